/**
 * kafkajs 2.2.4's request queue, one broker connection's (no server: the queue alone, its sends
 * recorded): without the fix, a queue with nothing pending arms a check timer again after every
 * check, which Node runs after 1 ms, for as long as the connection lives; with it, an idle queue
 * arms none, and a request held back by a throttle still goes out when the throttle ends.
 */
import { stopIdleRequestQueueTimers, type RequestQueueInternals } from '../../workers/kafka/request-queue-idle';

interface RequestQueue extends RequestQueueInternals {
  checkPendingRequests(): void;
  push(request: { entry: { correlationId: number; apiName: string; apiKey: number; apiVersion: number }; expectResponse: boolean; sendRequest: () => void }): void;
  destroy(): void;
}
type RequestQueueClass = new (options: Record<string, unknown>) => RequestQueue;

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
// The same module the fix patches, from this file's own module registry (unpatched until the second test).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const RequestQueueOf = (): RequestQueueClass => require('kafkajs/src/network/requestQueue') as RequestQueueClass;
const newQueue = (): RequestQueue => new (RequestQueueOf())({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'test', broker: 'b:9092', logger: silent });

describe("kafkajs' request queue when idle", () => {
  const queues: RequestQueue[] = [];
  afterAll(() => queues.forEach((q) => q.destroy()));

  it('without the fix, an idle queue arms a check timer again after every check (the 1 ms loop this fixes)', () => {
    // Arrange: kafkajs as it is (this file's module registry is its own: not patched yet).
    const queue = newQueue();
    queues.push(queue);
    // Act: what a response does (fulfillRequest checks the queue).
    queue.checkPendingRequests();
    // Assert: a timer, though nothing is pending and nothing throttles. If this fails, kafkajs has
    // fixed it: request-queue-idle.ts can go.
    expect(queue.pending).toHaveLength(0);
    expect(queue.throttleCheckTimeoutId).not.toBeNull();
  });

  it('with the fix, an idle queue arms no timer after a check', () => {
    expect(stopIdleRequestQueueTimers()).toBe(true);
    const queue = newQueue();
    queues.push(queue);
    queue.checkPendingRequests();
    expect(queue.throttleCheckTimeoutId).toBeNull();
    // Patching twice changes nothing.
    expect(stopIdleRequestQueueTimers()).toBe(true);
    queue.checkPendingRequests();
    expect(queue.throttleCheckTimeoutId).toBeNull();
  });

  it('with the fix, a request held back by a broker throttle goes out when the throttle ends', async () => {
    stopIdleRequestQueueTimers();
    const queue = newQueue();
    queues.push(queue);
    queue.throttledUntil = Date.now() + 30;
    const sent: number[] = [];
    // Act: pushed while throttled, it waits in `pending` with a timer of its own.
    queue.push({ entry: { correlationId: 7, apiName: 'Produce', apiKey: 0, apiVersion: 3 }, expectResponse: true, sendRequest: () => sent.push(7) });
    expect(sent).toEqual([]);
    expect(queue.pending).toHaveLength(1);
    // Assert: sent once the throttle ended, and no timer left behind.
    const deadline = Date.now() + 5_000;
    while (sent.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sent).toEqual([7]);
    expect(queue.pending).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(queue.throttleCheckTimeoutId).toBeNull();
  });
});
