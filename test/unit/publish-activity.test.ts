/**
 * The publish activity's decisions, with small fakes of the store and the producer (pure logic:
 * the real store and broker are in the e2e tests).
 */
import { KafkaJSConnectionError, KafkaJSLockTimeout, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSRequestTimeoutError } from 'kafkajs';
import type { Info } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import type { Producer, RecordMetadata } from 'kafkajs';
import { createPublishEvent } from '../../activities/publish-event';
import type { OutboxEvent, PublishResult } from '../../domain/outbox';
import type { PublishReceipt } from '../../workflows/types';
import { sampleEvent } from '../support/sample-event';

const event = sampleEvent;

function fakes(stored: OutboxEvent | null, send: Producer['send'], options: { claimedElsewhere?: boolean } = {}) {
  const marked: PublishResult[] = [];
  const failures: Array<{ attempts: number; lastError: string }> = [];
  const sent: Parameters<Producer['send']>[0][] = [];
  const calls: string[] = [];
  const store = {
    get: async () => {
      calls.push('get');
      return stored;
    },
    markPublished: async (r: PublishResult) => {
      marked.push(r);
      return 'marked' as const;
    },
    recordFailure: async (_id: string, failure: { attempts: number; lastError: string }) => {
      failures.push(failure);
    },
    // As the stores do: a pending or stuck event nobody else holds is claimed; every event is answered with.
    claimForWorkflow: async () => {
      calls.push('claimForWorkflow');
      return { claimed: !options.claimedElsewhere && (stored?.status === 'pending' || stored?.status === 'stuck'), event: stored };
    },
  };
  const producer = {
    send: async (record: Parameters<Producer['send']>[0]) => {
      sent.push(record);
      return send(record);
    },
  };
  return { store, producer, marked, sent, failures, calls };
}

const ack: RecordMetadata = { topicName: 'orders', partition: 2, errorCode: 0, baseOffset: '17' };

describe('publishEvent activity', () => {
  test('publishes with acks=all, the key and canonical value, then records partition and offset', async () => {
    const f = fakes(event(), async () => [ack]);
    const publish = createPublishEvent({ store: f.store, producer: f.producer, clock: () => new Date('2026-01-01T00:00:01Z') });
    const receipt: PublishReceipt = await mockEnvironment({ attempt: 3 }).run(publish, 'e-1');
    // The claim answers with the event: nothing is read before the send.
    expect(f.calls).toEqual(['claimForWorkflow']);
    expect(f.sent[0]).toMatchObject({ topic: 'orders', acks: -1, messages: [{ key: 'o-1', value: '{"a":1,"b":2}' }] });
    expect(receipt).toEqual({ eventId: 'e-1', topic: 'orders', partition: 2, offset: '17', publishedAt: '2026-01-01T00:00:01.000Z', attempts: 3, alreadyPublished: false });
    expect(f.marked).toEqual([{ ...receipt, publishedAt: new Date('2026-01-01T00:00:01Z') }]);
  });

  test('an event the store already says is published is not sent again', async () => {
    const published = event({ status: 'published', kafka: { partition: 1, offset: '5' }, publishedAt: new Date('2026-01-01T00:00:02Z'), attempts: 1 });
    const f = fakes(published, async () => [ack]);
    const receipt = await mockEnvironment().run(createPublishEvent({ store: f.store, producer: f.producer }), 'e-1');
    expect(f.sent).toEqual([]);
    expect(f.calls).toEqual(['claimForWorkflow']); // the refused claim answered with the event as it is
    expect(receipt).toMatchObject({ alreadyPublished: true, partition: 1, offset: '5' });
  });

  test('an unknown event id fails without retry', async () => {
    const f = fakes(null, async () => [ack]);
    const run = mockEnvironment().run(createPublishEvent({ store: f.store, producer: f.producer }), 'e-404');
    await expect(run).rejects.toMatchObject({ type: 'EVENT_NOT_FOUND', nonRetryable: true });
  });

  test('a broker error kafkajs calls retriable is retried; one it calls non-retriable is not', async () => {
    type ErrorCtor = new (e: unknown) => Error;
    const Protocol = KafkaJSProtocolError as unknown as ErrorCtor;
    const retriable = new Protocol({ type: 'LEADER_NOT_AVAILABLE', code: 5, retriable: true, message: 'leader not available' });
    const fatal = new Protocol({ type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false, message: 'message too large' });
    const env = mockEnvironment();
    const a = fakes(event(), async () => Promise.reject(retriable));
    const b = fakes(event(), async () => Promise.reject(fatal));
    const first = await env.run(createPublishEvent({ store: a.store, producer: a.producer }), 'e-1').catch((e: unknown) => e);
    const second = await env.run(createPublishEvent({ store: b.store, producer: b.producer }), 'e-1').catch((e: unknown) => e);
    expect(first).toBeInstanceOf(ApplicationFailure);
    expect(first).toMatchObject({ type: 'PUBLISH_FAILED', nonRetryable: false });
    expect(second).toMatchObject({ type: 'PUBLISH_FAILED', nonRetryable: true });
    expect(a.marked).toEqual([]);
    expect(a.failures).toEqual([{ attempts: 1, lastError: 'publish failed: leader not available' }]);
  });

  test.each([
    // (typed without a constructor argument, though it takes the message)
    ['a lock timeout while the broker hangs', () => new (KafkaJSLockTimeout as unknown as new (m: string) => Error)('Timeout while acquiring lock (1 waiting locks): "connect to broker 127.0.0.1:9092"')],
    ['a request timeout', () => new KafkaJSRequestTimeoutError('Request Produce(key: 0, version: 7) timed out')],
    ['a plain error (no kafkajs class)', () => new Error('socket hang up')],
  ])('%s is retried, though kafkajs may call it non-retriable (seen in the fault harness)', async (_name, make) => {
    const f = fakes(event(), async () => Promise.reject(make()));
    const failure = await mockEnvironment().run(createPublishEvent({ store: f.store, producer: f.producer }), 'e-1').catch((e: unknown) => e);
    expect(failure).toMatchObject({ type: 'PUBLISH_FAILED', nonRetryable: false });
  });

  test('kafkajs wrapping a refused connection in its non-retriable wrappers (a broker restart) is still retried', async () => {
    // What kafkajs' nested retriers throw while the broker is down (seen in the fault harness). The
    // constructors take options their typings do not list.
    type ErrorCtor = new (e: unknown, options?: Record<string, unknown>) => Error;
    const [NonRetriable, RetriesExceeded, Protocol] = [KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError] as unknown as ErrorCtor[];
    const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    const exhausted = new (RetriesExceeded as ErrorCtor)(refused, { retryCount: 2, retryTime: 400, cause: refused });
    const wrapped = new (NonRetriable as ErrorCtor)(exhausted, { cause: refused });
    const tooLargeCause = new (Protocol as ErrorCtor)({ type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false, message: 'too large' });
    const tooLarge = new (NonRetriable as ErrorCtor)(tooLargeCause, { cause: tooLargeCause });
    const env = mockEnvironment();
    const a = fakes(event(), async () => Promise.reject(wrapped));
    const b = fakes(event(), async () => Promise.reject(tooLarge));
    const first = await env.run(createPublishEvent({ store: a.store, producer: a.producer }), 'e-1').catch((e: unknown) => e);
    const second = await env.run(createPublishEvent({ store: b.store, producer: b.producer }), 'e-1').catch((e: unknown) => e);
    expect(first).toMatchObject({ type: 'PUBLISH_FAILED', nonRetryable: false });
    expect(second).toMatchObject({ type: 'PUBLISH_FAILED', nonRetryable: true });
  });

  test('an event the relay\'s fast path holds is not sent: a retryable failure, so a later attempt finds it published or takes it over', async () => {
    const f = fakes(event(), async () => [ack], { claimedElsewhere: true });
    const run = mockEnvironment().run(createPublishEvent({ store: f.store, producer: f.producer }), 'e-1');
    await expect(run).rejects.toMatchObject({ type: 'CLAIMED_BY_FAST_PATH', nonRetryable: false });
    expect(f.sent).toEqual([]);
    expect(f.marked).toEqual([]);
  });

  test('an unknown topic (confirmed by the broker) is not retried', async () => {
    const unknown = Object.assign(new Error('This server does not host this topic-partition'), { retriable: true, type: 'UNKNOWN_TOPIC_OR_PARTITION' });
    const f = fakes(event(), async () => Promise.reject(unknown));
    const publish = createPublishEvent({ store: f.store, producer: f.producer, topicExists: async () => false });
    const failure = await mockEnvironment().run(publish, 'e-1').catch((e: unknown) => e);
    expect(failure).toMatchObject({ type: 'UNKNOWN_TOPIC', nonRetryable: true });
  });
});

/** The activity's context; its SDK records (the expected failures, logged as warnings) stay out of the test output. */
function mockEnvironment(info?: Partial<Info>): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
}
