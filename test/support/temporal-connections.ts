/**
 * A Temporal client and a worker connection to the test server (TXOUTBOX_TEMPORAL_ADDRESS), opened
 * before the suite's tests and closed after them: the worker polls the same server the client
 * talks to, never the SDK's default localhost:7233.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { testServers } from './servers';

export interface TemporalConnections {
  client: Client;
  workerConnection: NativeConnection;
}

/** Registers beforeAll/afterAll hooks; the returned object is filled once beforeAll ran. */
export function useTemporalConnections(): TemporalConnections {
  const connections = {} as TemporalConnections;
  let connection: Connection | undefined;
  beforeAll(async () => {
    const { temporalAddress } = testServers();
    connection = await Connection.connect({ address: temporalAddress });
    connections.client = new Client({ connection });
    connections.workerConnection = await NativeConnection.connect({ address: temporalAddress });
  });
  afterAll(async () => {
    await connection?.close();
    await connections.workerConnection?.close();
  });
  return connections;
}
