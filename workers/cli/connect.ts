/**
 * What the commands connect to, each server on first use only: a command that fails on its
 * arguments connects to nothing, `list` never loads the Temporal SDK, and a server that does not
 * answer is named with its address and setting.
 */
import type { Client, Connection } from '@temporalio/client';
import type { OutboxAdminStore } from '../../domain/outbox';
import { temporalConnectionOptions, type TxoutboxConfig } from '../process/config';
import { reach, requirePackages, storeServer } from '../process/reach';
import { storeFromConfig } from '../process/store-from-config';

/** The Temporal SDK's client, loaded on first use (a service that only writes events need not install it). */
function temporalClient(): typeof import('@temporalio/client') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@temporalio/client') as typeof import('@temporalio/client');
}

export interface Context {
  config: TxoutboxConfig;
  /** The outbox store, connected on first call. */
  store: () => Promise<OutboxAdminStore>;
  /** A Temporal client, connected on first call. */
  client: () => Promise<Client>;
  /** Closes what was connected. */
  close: () => Promise<void>;
}

/** The CLI's connection to the Temporal frontend (a short connect timeout: an operator is waiting). */
export async function connectTemporal(config: TxoutboxConfig, connectTimeoutMs = 5_000): Promise<Connection> {
  requirePackages('this command', ['@temporalio/client']);
  const { Connection } = temporalClient();
  const options = temporalConnectionOptions(config);
  return reach(`Temporal at ${options.address}`, 'TXOUTBOX_TEMPORAL_ADDRESS', () => Connection.connect({ ...options, connectTimeout: connectTimeoutMs }));
}

/** The configured store, reached (its failure names the server and its setting). */
export function connectStore(config: TxoutboxConfig): ReturnType<typeof storeFromConfig> {
  const { what, variable } = storeServer(config);
  return reach(what, variable, () => storeFromConfig(config));
}

export function openContext(config: TxoutboxConfig): Context {
  let store: ReturnType<typeof connectStore> | undefined;
  let client: Promise<Client> | undefined;
  return {
    config,
    store: async () => (await (store ??= connectStore(config))).store,
    client: () => (client ??= connectTemporal(config).then((connection) => new (temporalClient().Client)({ connection, namespace: config.temporalNamespace }))),
    close: async () => {
      await Promise.all([store?.then((s) => s.close(), () => undefined), client?.then((c) => c.connection.close(), () => undefined)]);
    },
  };
}
