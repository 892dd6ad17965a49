/**
 * The processes' store round-trips metric (txoutbox_store_round_trips_total) counts what really goes
 * to the database: each MongoDB command, each PostgreSQL statement, once, by its name.
 */
import { loadConfig } from '../../workers/process/config';
import { storeFromConfig } from '../../workers/process/store-from-config';
import { pipelineStore, STORE_KINDS, StoreKind } from '../support/pipeline-store';

describe.each(STORE_KINDS)('store round trips (%s store)', (kind) => {
  const db = pipelineStore(kind);

  beforeAll(async () => {
    await db.setup();
  });

  afterAll(async () => {
    await db.teardown();
  });

  it('counts each request to the store once, by command', async () => {
    // Arrange
    const counted: string[] = [];
    const { store, close } = await storeFromConfig(loadConfig({ ...process.env, ...db.env }), undefined, (command) => counted.push(command));
    try {
      counted.length = 0;

      // Act: two reads of one event, one of a key's open sequence.
      await store.get('00000000-0000-7000-8000-000000000000');
      await store.get('00000000-0000-7000-8000-000000000001');
      await store.nextOpenSequence('a-topic', 'a-key');

      // Assert
      const read = kind === StoreKind.mongodb ? 'find' : 'select';
      expect(counted).toEqual([read, read, read]);
    } finally {
      await close();
    }
  });
});
