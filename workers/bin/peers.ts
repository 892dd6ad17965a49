import { missingPackages } from '../process/reach';

/**
 * The bins load the Temporal SDK and kafkajs, which a service installs next to txoutbox (they are
 * peer dependencies, so it holds one copy of each at its own versions). A missing one ends the
 * start with the command that installs it, not a stack trace from deep inside a require.
 */
export const PROCESS_PEERS = [
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/common',
  '@temporalio/interceptors-opentelemetry',
  '@temporalio/worker',
  '@temporalio/workflow',
  'kafkajs',
] as const;

/** Exits with status 2 and the install command when a peer of `what` cannot be resolved. */
export function requirePeers(what: string, peers: readonly string[] = PROCESS_PEERS): void {
  const missing = missingPackages(peers);
  if (missing.length === 0) return;
  process.stderr.write(`${what} needs these packages next to txoutbox (peer dependencies): npm install ${missing.join(' ')}\n`);
  process.exit(2);
}
