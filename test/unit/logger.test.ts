import { sdkLogFunction } from '../../workers/process/sdk-logging';
import { createJsonLogger } from '../../domain/outbox';

describe('JSON logger (pino)', () => {
  test('writes one JSON line with level name, message and the event fields; drops lines below the level', () => {
    const lines: string[] = [];
    const logger = createJsonLogger('info', (line) => lines.push(line));
    logger.debug('not written');
    logger.warn('publish attempt failed', { eventId: 'e-1', type: 'orders.OrderPlaced', workflowId: 'outbox-e-1', attempt: 2 });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      level: 'warn',
      msg: 'publish attempt failed',
      eventId: 'e-1',
      type: 'orders.OrderPlaced',
      workflowId: 'outbox-e-1',
      attempt: 2,
    });
  });

  test('never writes payloads or connection secrets, even when a caller passes them', () => {
    const lines: string[] = [];
    createJsonLogger('info', (line) => lines.push(line)).info('careless', {
      payload: { card: '4111' },
      event: { payload: { card: '4111' } },
      pgUrl: 'postgres://u:secret@h/db',
    });
    expect(lines[0]).not.toContain('4111');
    expect(lines[0]).not.toContain('secret');
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ payload: '[redacted]', pgUrl: '[redacted]' });
  });

  test('errors are serialised with message and type', () => {
    const lines: string[] = [];
    createJsonLogger('info', (line) => lines.push(line)).error('failed', { error: new TypeError('boom') });
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ error: { type: 'TypeError', message: 'boom' } });
  });
});

describe("the Temporal SDK's records", () => {
  test('are written as one JSON line each by the process logger, with their error, not as multi-line text', () => {
    // Arrange
    const lines: string[] = [];
    const log = sdkLogFunction(createJsonLogger('info', (line) => lines.push(line)));
    const failure = new Error('Workflow task failed\n    at a deep stack');

    // Act
    log({ level: 'WARN', message: 'Task not found when completing', timestampNanos: 1n, meta: { runId: 'r-1', attempt: 3, historySize: 1348866n, error: failure } });
    log({ level: 'DEBUG', message: 'below the level', timestampNanos: 2n });

    // Assert
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'warn',
      msg: 'Task not found when completing',
      source: 'temporal-sdk',
      runId: 'r-1',
      attempt: 3,
      error: { message: 'Workflow task failed\n    at a deep stack' },
    });
  });
});
