/**
 * Restart of the database server loses nothing: the relay's change feed (MongoDB: a change stream
 * reopened from its saved resume token; PostgreSQL: the (txid, id) cursor and LISTEN) picks up after
 * the server the scripts started comes back, and the worker's store calls are retried meanwhile.
 *
 * Restarts the store's server through scripts/infra.sh, so it needs that script's server.
 */
import { infra, infraPid } from '../support/infra-control';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';

describe.each(STORE_KINDS)('restart of the store server (%s store)', (kind) => {
  let p: TestPipeline;

  beforeEach(async () => {
    infraPid(kind); // throws, naming the reason, when the scripts did not start this server
    p = await new TestPipeline(kind).setup();
  });

  afterEach(async () => {
    await p.teardown();
  });

  test('restart of the database loses nothing: the relay resumes from its saved position and delivers what was committed after', async () => {
    // Arrange
    await p.startWorker();
    await p.startRelay();
    const before = [];
    for (let i = 1; i <= 3; i++) before.push(await p.placeOrder(`before-${i}`));
    await p.collector.waitForEventIds(before);

    // Act
    await infra('down', kind);
    await infra('up', kind);
    const after: string[] = [];
    // The first writes may meet connections the restart broke: a failed commit is retried by the
    // service (here: the test); only what committed counts.
    let attempt = 0;
    for (let i = 1; i <= 3; i++) after.push(await waitFor(() => p.placeOrder(`after-${i}-${++attempt}`), { timeoutMs: 60_000, what: `order after-${i} committed` }));
    await p.collector.waitForEventIds(after, 120_000);

    // Assert
    for (const id of [...before, ...after]) expect(p.collector.withEventId(id)).toHaveLength(1);
    await waitFor(async () => (await p.eventRows()).every((r) => r.status === 'published'), { what: 'every event marked published' });
  }, 240_000);
});
