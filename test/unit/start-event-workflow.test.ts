import { ServiceError } from '@temporalio/client';
import { isPermanentStartError, MAX_WORKFLOW_ID_BYTES, sequencerWorkflowId } from '../../workers/relay/start-event-workflow';

/** A gRPC error as @grpc/grpc-js raises it (status code on the error). */
function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} ${details}`), { code, details });
}

describe('start errors: a refusal Temporal will repeat forever is told from one that can pass', () => {
  test('INVALID_ARGUMENT (an id or attribute over a limit) is permanent, as the client wraps it', () => {
    const err = new ServiceError('Failed to start Workflow', { cause: grpcError(3, 'WorkflowId length exceeds limit.') });
    expect(isPermanentStartError(err)).toBe(true);
  });

  test.each([
    ['UNAVAILABLE', 14],
    ['DEADLINE_EXCEEDED', 4],
    ['RESOURCE_EXHAUSTED', 8],
  ])('%s is not permanent: the feed retries the batch', (_name, code) => {
    expect(isPermanentStartError(new ServiceError('Failed to start Workflow', { cause: grpcError(code, 'x') }))).toBe(false);
  });

  test('an error without a gRPC status is not permanent', () => {
    expect(isPermanentStartError(new Error('socket hang up'))).toBe(false);
    expect(isPermanentStartError('not an error')).toBe(false);
  });
});

describe('sequencer workflow ids fit Temporal', () => {
  test('a short key keeps its readable id', () => {
    expect(sequencerWorkflowId('orders', 'order-1')).toBe('outbox-key-orders/order-1');
  });

  test('a key at the 1,024-byte limit (multi-byte characters too) is hashed to an id within the limit, one per key', () => {
    const long = 'é'.repeat(512);
    const id = sequencerWorkflowId('orders', long);
    expect(Buffer.byteLength(id, 'utf8')).toBeLessThanOrEqual(MAX_WORKFLOW_ID_BYTES);
    expect(id).toMatch(/^outbox-key-orders\/sha256:[0-9a-f]{64}$/);
    expect(sequencerWorkflowId('orders', `${long.slice(1)}e`)).not.toBe(id);
  });
});
