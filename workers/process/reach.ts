/**
 * Reaching the servers and loading the packages a command or a process needs, with failures that
 * say what to do: a server that does not answer is named with its address and the setting that
 * chose it; a package that is not installed is named with the command that installs it.
 */
import type { TxoutboxConfig } from './config';

/** A server that could not be reached: its name, address and setting are in the message. */
export class Unreachable extends Error {}

/** Packages that are not installed next to txoutbox (peer dependencies, or the store's driver). */
export class MissingPackage extends Error {
  constructor(
    readonly packages: readonly string[],
    what: string,
  ) {
    super(`${what} needs ${packages.length === 1 ? 'this package' : 'these packages'} next to txoutbox: npm install ${packages.join(' ')}`);
  }
}

/** `connect()`, or Unreachable naming `what` and `variable`; a MissingPackage passes as it is. */
export async function reach<T>(what: string, variable: string, connect: () => Promise<T>): Promise<T> {
  try {
    return await connect();
  } catch (err) {
    if (err instanceof MissingPackage) throw err;
    throw new Unreachable(`cannot reach ${what} (${variable}): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The configured store as `reach` names it. */
export function storeServer(config: Pick<TxoutboxConfig, 'store'>): { what: string; variable: string } {
  return config.store === 'mongodb' ? { what: 'MongoDB', variable: 'TXOUTBOX_MONGODB_URI' } : { what: 'PostgreSQL', variable: 'TXOUTBOX_PG_URL' };
}

/** Those of `packages` that cannot be resolved from txoutbox. */
export function missingPackages(packages: readonly string[]): string[] {
  return packages.filter((name) => {
    try {
      require.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

/** Throws MissingPackage when one of `packages` is not installed. */
export function requirePackages(what: string, packages: readonly string[]): void {
  const missing = missingPackages(packages);
  if (missing.length > 0) throw new MissingPackage(missing, what);
}
