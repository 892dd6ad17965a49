/**
 * An operator finds a stuck event in the Temporal Web UI: headless Chromium (Debian's package,
 * driven by playwright-core) opens the workflow list filtered by OutboxStatus = "stuck" and finds the
 * event's workflow. The screenshot is kept in test-artifacts/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { stateQuery } from '../../workflows/signals';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';

const CHROMIUM = process.env.TXOUTBOX_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts');

describe.each(STORE_KINDS)('Temporal Web UI (%s store)', (kind) => {
  let p: TestPipeline;
  let browser: Browser | undefined;

  beforeAll(() => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is not at ${CHROMIUM}: npm test installs it (apt-get install chromium); or set TXOUTBOX_CHROMIUM`);
    }
  });

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
  });

  afterEach(async () => {
    await browser?.close();
    await p.teardown();
  });

  test('an operator filters by OutboxStatus = "stuck" and finds the stuck event\'s workflow', async () => {
    // Arrange
    await p.startWorker();
    await p.startRelay(p.relay({ publishPolicy: { initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 2 } }));
    const aggregateId = `order-ui-${Date.now()}`;
    const eventId = await p.shipOrder(aggregateId);
    const workflowId = eventWorkflowId(eventId);
    await waitFor(async () => (await p.client.workflow.getHandle(workflowId).query(stateQuery)).status === 'stuck', { what: 'the event to be stuck' });
    await waitFor(async () => (await p.client.workflow.getHandle(workflowId).describe()).searchAttributes.OutboxStatus?.[0] === 'stuck', {
      what: 'OutboxStatus = stuck in visibility',
    });

    // Act
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
    const query = `OutboxStatus = "stuck" AND OutboxAggregateId = "${aggregateId}"`;
    await page.goto(`${p.servers.temporalUiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
    const row = page.getByText(workflowId);
    await row.first().waitFor({ timeout: 30_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'web-ui-stuck-filter.png'), fullPage: true });

    // Assert
    expect(await row.count()).toBeGreaterThan(0);
    expect(page.url()).toContain(encodeURIComponent('OutboxStatus'));
  });
});
