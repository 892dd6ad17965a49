/** What a command that reads the outbox connects to: the store and the Temporal frontend. */
import { Client, Connection } from '@temporalio/client';
import type { OutboxAdminStore } from '../../domain/outbox';
import { temporalConnectionOptions, type TxoutboxConfig } from '../process/config';
import { storeFromConfig } from '../process/store-from-config';

export interface Context {
  config: TxoutboxConfig;
  store: OutboxAdminStore;
  client: Client;
  close: () => Promise<void>;
}

/** The CLI's connection to the Temporal frontend (a short connect timeout: an operator is waiting). */
export function connectTemporal(config: TxoutboxConfig): Promise<Connection> {
  return Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 5_000 });
}

export async function connect(config: TxoutboxConfig): Promise<Context> {
  const connection = await connectTemporal(config);
  const client = new Client({ connection, namespace: config.temporalNamespace });
  const { store, close } = await storeFromConfig(config);
  return { config, store, client, close: async () => void (await Promise.all([close(), connection.close()])) };
}
