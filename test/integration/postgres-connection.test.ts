/**
 * A PostgreSQL connection whose server stops answering (a frozen server, a network path lost
 * without a reset) must fail the store's queries and its change feed after the query timeout, not
 * hang them: the relay's feed reopens from its checkpoint once the server answers again. The
 * connection runs through a TCP proxy the test freezes. PostgreSQL only: the MongoDB driver has its
 * own server monitoring and socket timeouts.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { PostgresOutboxStore } from '../../domain/stores/postgres';
import { testServers, uniqueName } from '../support/servers';

/** Forwards TCP to `target`; `freeze()` stops every byte both ways, as a half-open connection does. */
class FreezableProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private frozen = false;

  constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      const upstream = createConnection(target);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(from);
        from.on('data', (chunk) => {
          if (!this.frozen) to.write(chunk);
        });
        from.on('close', () => to.destroy());
        from.on('error', () => to.destroy());
      }
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    return address.port;
  }

  freeze(): void {
    this.frozen = true;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('PostgreSQL store over a connection that stops answering', () => {
  test('a query and the change feed fail after the query timeout instead of hanging, and a new connection works', async () => {
    // Arrange
    const url = new URL(testServers().pgUrl);
    const proxy = new FreezableProxy({ host: url.hostname, port: Number(url.port || 5432) });
    const port = await proxy.listen();
    const proxied = new URL(url);
    proxied.port = String(port);
    const schema = uniqueName('hang').replace(/-/g, '_');
    const store = new PostgresOutboxStore({ connectionString: proxied.toString(), schema, queryTimeoutMs: 1_500 });
    await store.setup();
    const abort = new AbortController();
    const batches = store.openFeed({ name: 'hang-test', batchSize: 10, maxWaitMs: 100 }).batches(abort.signal)[Symbol.asyncIterator]();
    await (await batches.next()).value?.checkpoint();

    // Act: the server stops answering on every open connection.
    proxy.freeze();
    const query = await store.stats().then(
      () => 'answered',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    const feed = await (async () => {
      for (;;) {
        const next = await batches.next();
        if (next.done) return 'ended';
      }
    })().catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    abort.abort();
    await proxy.close();
    const direct = new PostgresOutboxStore({ connectionString: url.toString(), schema });
    const afterwards = await direct.stats();

    // Assert
    expect(query).toMatch(/timeout/i);
    expect(feed).toMatch(/timeout/i);
    expect(afterwards.counts.pending).toBe(0);
    await direct.close();
    await store.close().catch(() => undefined);
  });
});
