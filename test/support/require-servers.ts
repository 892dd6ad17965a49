import { connect } from 'node:net';
import { testServers } from './servers';

function reachable(hostPort: string): Promise<boolean> {
  const url = hostPort.includes('://') ? new URL(hostPort) : new URL(`tcp://${hostPort}`);
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), timeout: 2_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * Jest globalSetup of the server-backed projects: fails the run at once, with the fix, when a
 * server is missing, instead of letting every test time out on its own.
 */
export default async function requireServers(): Promise<void> {
  const servers = testServers();
  const needed: Array<[string, string]> = [
    ['Temporal', servers.temporalAddress],
    ['Kafka', servers.kafkaBrokers[0] ?? ''],
    ['PostgreSQL', servers.pgUrl],
  ];
  const missing: string[] = [];
  for (const [name, address] of needed) {
    if (!(await reachable(address))) missing.push(`${name} (${address.replace(/\/\/[^@]*@/, '//')})`);
  }
  if (missing.length > 0) {
    throw new Error(
      `These servers do not answer: ${missing.join(', ')}. ` +
        'Run the whole suite with `npm test` (it starts them), or start them with `bash scripts/infra.sh up`.',
    );
  }
}
