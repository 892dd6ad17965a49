/** `contracts` and `contracts check`: a service's event contracts, from its registry module, for consumers and for CI. */
import { readFileSync } from 'node:fs';
import { contractDrift, describeContracts, renderContracts, type Contracts } from '../../domain/outbox';
import { loadContracts } from '../process/modules';
import { CliError, ExitCode, type Io, type Print } from './io';

export interface ContractsOptions {
  /** The registry module (--module, else TXOUTBOX_CONTRACTS_MODULE). */
  module: string | undefined;
  /** contracts check --against FILE: the contracts as published before (`contracts --json`). */
  against: string | undefined;
}

/**
 * `contracts`: every type, topic, version, compatibility, deprecated field and the changes between
 * versions. `contracts check`: loads the registry (which checks each version's compatibility, an
 * INCOMPATIBLE_SCHEMA failing it) and, with --against, that no version published before was removed
 * or changed. Exit 0 when all holds, 1 when not.
 */
export function contracts(check: boolean, options: ContractsOptions, io: Io, print: Print): ExitCode {
  if (options.module === undefined || options.module === '') throw new CliError('contracts needs the registry module: --module FILE, or TXOUTBOX_CONTRACTS_MODULE', ExitCode.usage);
  const registry = loadContracts(options.module);
  const current = describeContracts(registry);
  if (!check) {
    print(renderContracts(current), current);
    return ExitCode.ok;
  }
  const problems = options.against === undefined ? [] : contractDrift(current, publishedContracts(options.against));
  const versions = current.types.reduce((n, t) => n + t.versions.length, 0);
  if (problems.length > 0) {
    for (const problem of problems) io.err(problem);
    print(`contracts check: ${problems.length} problem(s) against ${options.against}`, { ok: false, problems });
    return ExitCode.failure;
  }
  const against = options.against === undefined ? '' : `, and every version of ${options.against} is as it was`;
  print(`contracts check: ${current.types.length} type(s), ${versions} version(s): each keeps the compatibility it promises${against}`, { ok: true, problems: [] });
  return ExitCode.ok;
}

function publishedContracts(path: string): Contracts {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError(`--against ${path}: ${err instanceof Error ? err.message : String(err)}`, ExitCode.usage);
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as Contracts).types)) {
    throw new CliError(`--against ${path}: not the output of \`txoutbox contracts --json\``, ExitCode.usage);
  }
  return parsed as Contracts;
}
