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
  const missing: string[] = [];
  const needed: Array<[string, string]> = [
    ['Temporal', servers.temporalAddress],
    ['Kafka', servers.kafkaBrokers[0] ?? ''],
    ['PostgreSQL', servers.pgUrl],
  ];
  // MongoDB: the scripts' server or the user's replica set; its first seed is enough to say "not up".
  const mongo = process.env.TXOUTBOX_MONGODB_URI ?? process.env.MONGODB_URI;
  if (mongo === undefined) missing.push('MongoDB (TXOUTBOX_MONGODB_URI / MONGODB_URI is not set)');
  else {
    const seed = /^mongodb:\/\/(?:[^@/]*@)?([^,/?]+:\d+)/.exec(mongo)?.[1]; // none for mongodb+srv: DNS decides
    if (seed !== undefined) needed.push(['MongoDB', seed]);
  }
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
