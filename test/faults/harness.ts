/**
 * The fault harness: steady load through the public API (outbox.add in MongoDB or PostgreSQL
 * transactions, some aborted after add) in one or more lanes (a store and a mode each, side by side),
 * while, at seeded random points, faults hit them:
 * - a relay or worker killed with SIGKILL (also right after Kafka acknowledged a send);
 * - the Kafka broker restarted, frozen (SIGSTOP) past the producers' timeouts, or down for minutes
 *   (a long outage, with a hot ordered key whose backlog outgrows its sequencer's buffer);
 * - a slow broker: every byte to and from it held past a publish attempt's timeout for a minute (the
 *   processes reach Kafka through a delaying proxy the harness controls);
 * - a lane's topic deleted and created again while its events are being published;
 * after each fault the harness, as the operator, retries what it made stuck (what escalated for want
 * of the topic, or with its attempts spent while Kafka was away);
 * - the Temporal dev server and the stores' servers restarted.
 * The relays and workers run as their real processes (workers/bin).
 *
 * At the end each lane's independent checker (checker.ts) compares every copy the topic held (a
 * recorder read it all along, in each life of the topic) with the store and with what the writers
 * were told: every committed event present, nothing of an aborted transaction, every duplicate an
 * already-seen event id, per-key order kept for the ordered type, every event `published` or `stuck`
 * with a reason, an inbox consumer that applied each event exactly once, and the longest time an
 * ordered key stood still.
 *
 * Run in the suite by test/faults/faults.test.ts (CI-sized) and alone by `npm run faults` (soak).
 * It needs the servers scripts/infra.sh started (it stops and restarts them through that script).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { CLUSTER_ENV, infra, infraPid, TEMPORAL_SERVER_ENV, useInfra, useKafkaCluster, type KafkaClusterHandle } from '../support/infra-control';
import { testServers, waitFor } from '../support/servers';
import { seeded } from '../support/seeded';
import { DelayingTcpProxy, kafkaProxyAddresses } from '../support/tcp-proxy';
import { Lane, type LaneSpec, type LaneVerdict } from './lane';
import type { ManagedProcess } from './managed-process';

export const FAULT_KINDS = [
  'kill-relay',
  'kill-worker',
  'kill-worker-after-ack',
  'kill-relay-after-ack',
  'kafka-restart',
  'kafka-hang',
  'temporal-restart',
  'store-restart',
  'kafka-outage',
  'slow-broker',
  'topic-recreate',
] as const;
/**
 * The faults of a three-broker cluster (issue 27), in place of the single broker's restart, freeze and
 * slow proxy: the leader of a lane's partition killed (SIGKILL) and started again after another was
 * elected; its followers frozen one after the other past replica.lag.time.max.ms, so the in-sync set
 * shrinks and then writes with acks=all cannot be acknowledged for a while; every broker restarted in
 * turn (SIGTERM, a controlled shutdown) under load. `kafka-outage` takes the whole cluster down.
 */
export const CLUSTER_FAULT_KINDS = [
  'kill-relay',
  'kill-worker',
  'kill-worker-after-ack',
  'kill-relay-after-ack',
  'temporal-restart',
  'store-restart',
  'kafka-outage',
  'topic-recreate',
  'kafka-leader-kill',
  'kafka-isr-shrink',
  'kafka-rolling-restart',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number] | (typeof CLUSTER_FAULT_KINDS)[number];

/** The kinds of fault a run on this Kafka can take. */
export function faultKindsFor(kafka: 'single' | 'cluster'): readonly FaultKind[] {
  return kafka === 'cluster' ? CLUSTER_FAULT_KINDS : FAULT_KINDS;
}

export interface HarnessOptions {
  seed: number;
  /** The lanes, run side by side under the one plan of faults. */
  lanes: readonly LaneSpec[];
  /** How long the load runs, in ms; the faults fall within it (a long fault holds the next ones back). */
  durationMs: number;
  /** How many faults to inject (each kind at least once when there are at least as many as kinds). */
  faults: number;
  /**
   * The Kafka the lanes publish to: the scripts' single broker (reached through the harness's
   * delaying proxy), or their three-broker cluster (TXOUTBOX_KAFKA=cluster, started when it does not
   * run, and stopped after). @default 'single'
   */
  kafka?: 'single' | 'cluster';
  /** The Temporal the processes use: the dev server, or the Temporal server on PostgreSQL (TXOUTBOX_TEMPORAL=server, started likewise). @default 'dev' */
  temporal?: 'dev' | 'server';
  /** The kinds of fault to draw from. @default faultKindsFor(kafka) */
  kinds?: readonly FaultKind[];
  /** Write transactions started per second, in each lane. @default 4 */
  ratePerSecond?: number;
  /** Keys (aggregate ids) the events are spread over. @default 8 */
  keys?: number;
  /** Share of a lane's writes that are ordered events of one hot key (`acct-hot`). @default 0 */
  hotKeyShare?: number;
  /** Share of transactions that abort after outbox.add(). @default 0.1 */
  abortShare?: number;
  /** How long a Kafka outage lasts, in ms: drawn between the two. @default [120000, 300000] */
  outageMs?: readonly [number, number];
  /** How long the broker is slow. @default 60000 */
  slowBrokerMs?: number;
  /** Events a key's sequencer keeps (TXOUTBOX_SEQUENCER_BUFFER of the relays). @default the relay's (500) */
  sequencerBuffer?: number;
  /** Longest wait for every event to settle after the load, in ms. @default 600000 */
  drainTimeoutMs?: number;
  /** Stops the run at its next step (between faults, after the drain), cleaning up behind it. */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface HarnessResult {
  ok: boolean;
  seed: number;
  faults: Array<{ atMs: number; kind: FaultKind; tookMs: number }>;
  lanes: LaneVerdict[];
}

/** A publish attempt's timeout in the harness, and what the processes' Kafka client waits for an answer. */
const PUBLISH_TIMEOUT_MS = 10_000;
const KAFKA_REQUEST_TIMEOUT_MS = 15_000;
/** What the slow broker holds every byte, each way: a round trip (12 s) outlasts an attempt, not a request. */
const SLOW_BROKER_DELAY_MS = 6_000;
/** A Kafka freeze: longer than a request, so every request in flight times out. */
const HANG_MS = 18_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runFaultHarness(options: HarnessOptions): Promise<HarnessResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[faults] ${line}\n`));
  const random = seeded(options.seed);
  const stores = [...new Set(options.lanes.map((l) => l.store))];
  for (const service of stores) infraPid(service);
  const shape = await productionShape(options);
  const { proxy, cluster } = shape;
  const lanes = options.lanes.map(
    (spec) =>
      new Lane(spec, {
        kafkaBrokers: shape.kafkaBrokers,
        processBrokers: shape.processBrokers,
        temporalAddress: shape.temporalAddress,
        processEnv: {
          // Shorter than every Kafka freeze (18-27 s); a slow broker's round trip (12 s) outlasts an
          // attempt (10 s) but not a request (15 s): acknowledgements arrive after their attempt ended.
          TXOUTBOX_KAFKA_REQUEST_TIMEOUT_MS: String(KAFKA_REQUEST_TIMEOUT_MS),
          TXOUTBOX_PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
          ...(options.sequencerBuffer === undefined ? {} : { TXOUTBOX_SEQUENCER_BUFFER: String(options.sequencerBuffer) }),
        },
        log,
      }),
  );
  log(`seed ${options.seed}; lanes ${lanes.map((l) => l.name).join(', ')}; processes reach Kafka through ${shape.processBrokers} (${options.kafka ?? 'single'}), Temporal at ${shape.temporalAddress} (${options.temporal ?? 'dev'})`);
  let load: { stop(): Promise<void> } | undefined;
  const stopIfAborted = (): void => {
    if (options.signal?.aborted) throw new Error('the fault harness was stopped before its end (the test timed out?)');
  };
  try {
    await Promise.all(lanes.map((lane) => lane.start()));
    const plan = planFaults(options, lanes, random);
    log(`plan: ${plan.map((p) => `${p.kind}@${(p.atMs / 1000).toFixed(0)}s`).join(', ')}`);

    const t0 = Date.now();
    load = runLoad(options, lanes, random, t0);
    const done: HarnessResult['faults'] = [];
    for (const step of plan) {
      const wait = t0 + step.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      stopIfAborted();
      const started = Date.now();
      log(`${((started - t0) / 1000).toFixed(1)}s: ${step.kind}${step.lane ? ` (lane ${step.lane.name})` : ''}`);
      await inject(step, { lanes, stores, proxy, cluster, temporalEnv: shape.temporalEnv, options, random, log });
      done.push({ atMs: started - t0, kind: step.kind, tookMs: Date.now() - started });
      log(`${((Date.now() - t0) / 1000).toFixed(1)}s: ${step.kind} over after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      // The operator after an incident: what it made stuck (its attempts spent while Kafka was away)
      // is retried, as an on-call operator would once the cause is gone.
      await Promise.all(lanes.map((lane) => lane.retryStuck()));
    }
    const rest = t0 + options.durationMs - Date.now();
    if (rest > 0) await sleep(rest);
    stopIfAborted();
    await load.stop();
    log(`load stopped after ${((Date.now() - t0) / 1000).toFixed(0)}s: ${lanes.map((l) => `${l.name} ${l.committed.size} committed, ${l.aborted.size} aborted, ${l.writeErrors} write errors`).join('; ')}`);

    for (const lane of lanes) await lane.ensureRunning();
    log('waiting for every event to be published or stuck');
    const drainTimeoutMs = options.drainTimeoutMs ?? 600_000;
    await Promise.all(lanes.map((lane) => lane.drain(drainTimeoutMs)));
    stopIfAborted();
    const verdicts = await Promise.all(lanes.map((lane) => lane.verdict(options.seed, t0)));
    for (const verdict of verdicts) log(verdict.line);
    for (const [i, lane] of lanes.entries()) await lane.cleanup(verdicts[i]?.ok !== true);
    return { ok: verdicts.every((v) => v.ok), seed: options.seed, faults: done, lanes: verdicts };
  } catch (err) {
    // Nothing left running behind (writers, processes, consumers): the lanes are kept for inspection.
    log(`stopped: ${err instanceof Error ? err.message : String(err)}`);
    await load?.stop().catch(() => undefined);
    await Promise.all(lanes.map((lane) => lane.cleanup(true).catch(() => undefined)));
    throw err;
  } finally {
    await proxy?.stop();
    await shape.release();
  }
}

interface Shape {
  kafkaBrokers: string[];
  processBrokers: string;
  temporalAddress: string;
  /** What scripts/infra.sh needs to restart this Temporal. */
  temporalEnv: Record<string, string>;
  proxy: DelayingTcpProxy | undefined;
  cluster: KafkaClusterHandle | undefined;
  release(): Promise<void>;
}

/** The Kafka and Temporal a run uses, started when they are the cluster or the server and not running. */
async function productionShape(options: HarnessOptions): Promise<Shape> {
  const releases: Array<() => Promise<void>> = [];
  const release = async (): Promise<void> => {
    for (const each of releases.reverse()) await each().catch(() => undefined);
  };
  try {
    let temporalAddress = testServers().temporalAddress;
    let temporalEnv: Record<string, string> = {};
    if (options.temporal === 'server') {
      const server = await useInfra(['temporal'], TEMPORAL_SERVER_ENV);
      releases.push(server.release);
      temporalAddress = server.settings.TXOUTBOX_TEMPORAL_ADDRESS ?? temporalAddress;
      temporalEnv = TEMPORAL_SERVER_ENV;
    } else {
      infraPid('temporal');
    }
    if (options.kafka === 'cluster') {
      const cluster = await useKafkaCluster();
      releases.push(cluster.release);
      return { kafkaBrokers: cluster.brokers, processBrokers: cluster.brokers.join(','), temporalAddress, temporalEnv, proxy: undefined, cluster, release };
    }
    infraPid('kafka');
    // The processes reach Kafka through a proxy the harness can make slow (the broker advertises its
    // proxied listener at the proxy's address, so they keep using it).
    const { listen, target } = kafkaProxyAddresses();
    const proxy = new DelayingTcpProxy(listen, target);
    await proxy.start();
    return { kafkaBrokers: testServers().kafkaBrokers, processBrokers: `${listen.host}:${listen.port}`, temporalAddress, temporalEnv, proxy, cluster: undefined, release };
  } catch (err) {
    await release();
    throw err;
  }
}

interface Step {
  kind: FaultKind;
  atMs: number;
  /** A short pause (a process down, a broker restarting), ms. */
  pauseMs: number;
  /** The lane a process fault hits. */
  lane?: Lane;
}

/**
 * The fault plan, from the seed: every kind once (shuffled) while there are enough faults, then at
 * random; each process fault on a lane chosen by the seed among those it applies to. The relay sends
 * only on the fast path; the worker there only sends the events that fell back.
 */
function planFaults(options: HarnessOptions, lanes: readonly Lane[], random: () => number): Step[] {
  const lanesFor = (kind: FaultKind): Lane[] =>
    kind === 'kill-worker-after-ack' ? lanes.filter((l) => !l.spec.fastPath) : kind === 'kill-relay-after-ack' ? lanes.filter((l) => l.spec.fastPath) : [...lanes];
  const available = (options.kinds ?? faultKindsFor(options.kafka ?? 'single')).filter((k) => lanesFor(k).length > 0);
  const kinds: FaultKind[] = [];
  while (kinds.length < options.faults) {
    const round: FaultKind[] = [...available];
    for (let i = round.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [round[i], round[j]] = [round[j] as FaultKind, round[i] as FaultKind];
    }
    kinds.push(...round.slice(0, options.faults - kinds.length));
  }
  const times = kinds.map(() => options.durationMs * (0.05 + 0.75 * random())).sort((a, b) => a - b);
  return kinds.map((kind, i) => {
    const candidates = lanesFor(kind);
    const lane = kind.startsWith('kill-') ? candidates[Math.floor(random() * candidates.length)] : undefined;
    return { kind, atMs: Math.round(times[i] ?? 0), pauseMs: 1_000 + Math.round(random() * 9_000), ...(lane === undefined ? {} : { lane }) };
  });
}

/** Each lane's writers: `ratePerSecond` transactions a second, at most 32 in flight, until stopped. */
function runLoad(options: HarnessOptions, lanes: readonly Lane[], random: () => number, t0: number): { stop(): Promise<void> } {
  const rate = options.ratePerSecond ?? 4;
  const keys = options.keys ?? 8;
  const abortShare = options.abortShare ?? 0.1;
  const hotShare = options.hotKeyShare ?? 0;
  let running = true;
  const loops = lanes.map(async (lane) => {
    const inFlight = new Set<Promise<void>>();
    for (let n = 0; running; n++) {
      const hot = random() < hotShare;
      const key = hot ? 'acct-hot' : `acct-${Math.floor(random() * keys)}`;
      const ordered = hot || random() < 0.5;
      const abort = random() < abortShare;
      const wait = t0 + (n * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
      if (inFlight.size >= 32) await Promise.race(inFlight);
      const p = lane.write(n, key, ordered, abort).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function inject(
  step: Step,
  ctx: {
    lanes: readonly Lane[];
    stores: readonly string[];
    proxy: DelayingTcpProxy | undefined;
    cluster: KafkaClusterHandle | undefined;
    temporalEnv: Record<string, string>;
    options: HarnessOptions;
    random: () => number;
    log: (line: string) => void;
  },
): Promise<void> {
  const { lane, pauseMs } = step;
  const single = (): DelayingTcpProxy => {
    if (ctx.proxy === undefined) throw new Error(`${step.kind} is a fault of the single broker; this run is on the cluster`);
    return ctx.proxy;
  };
  const cluster = (): KafkaClusterHandle => {
    if (ctx.cluster === undefined) throw new Error(`${step.kind} is a fault of the cluster; this run is on the single broker (kafka: 'cluster')`);
    return ctx.cluster;
  };
  switch (step.kind) {
    case 'kill-relay': {
      const [relay] = (lane as Lane).pickRelay(ctx.random);
      await relay.kill9();
      await sleep(pauseMs);
      await relay.start();
      return;
    }
    case 'kill-worker': {
      const { worker } = lane as Lane;
      await worker.kill9();
      await sleep(pauseMs);
      await worker.start();
      return;
    }
    case 'kill-worker-after-ack':
    case 'kill-relay-after-ack': {
      const target: [ManagedProcess, string] = step.kind === 'kill-worker-after-ack' ? [(lane as Lane).worker, (lane as Lane).workerTrigger] : (lane as Lane).pickRelay(ctx.random);
      await killAfterAck(...target, step.kind);
      return;
    }
    case 'kafka-restart':
      single();
      await restart('kafka', pauseMs);
      return;
    case 'kafka-hang': {
      // Longer than the processes' request timeout and a publish attempt.
      single();
      const pid = infraPid('kafka');
      process.kill(pid, 'SIGSTOP');
      await sleep(HANG_MS + pauseMs);
      process.kill(pid, 'SIGCONT');
      return;
    }
    case 'kafka-outage': {
      const [least, most] = ctx.options.outageMs ?? [120_000, 300_000];
      await restart('kafka', least + Math.round(ctx.random() * (most - least)), ctx.cluster === undefined ? {} : CLUSTER_ENV);
      return;
    }
    case 'slow-broker': {
      const proxy = single();
      proxy.delayMs = SLOW_BROKER_DELAY_MS;
      await sleep(ctx.options.slowBrokerMs ?? 60_000);
      proxy.delayMs = 0;
      return;
    }
    case 'kafka-leader-kill': {
      // The leader of a partition of a lane's topic: killed, kept down past the controller's session
      // timeout (9 s, so another is elected), then started again and back in sync.
      const target = ctx.lanes[Math.floor(ctx.random() * ctx.lanes.length)] as Lane;
      const { leader } = await partitionOf(target, ctx.random);
      cluster().kill9(leader);
      ctx.log(`broker ${leader} (leader of a partition of ${target.topic}) killed`);
      await sleep(12_000 + pauseMs);
      await cluster().start(leader);
      await inSync(ctx.lanes);
      return;
    }
    case 'kafka-isr-shrink': {
      // One follower frozen past replica.lag.time.max.ms (10 s): the in-sync set shrinks to two, the
      // minimum. Then the other too: acks=all writes of that leader cannot be acknowledged (with two
      // of three voters frozen the controller quorum is lost as well, so the set cannot shrink below
      // two: producers see timeouts rather than NOT_ENOUGH_REPLICAS; see the cluster producer test).
      const target = ctx.lanes[Math.floor(ctx.random() * ctx.lanes.length)] as Lane;
      const { leader, replicas } = await partitionOf(target, ctx.random);
      const followers = replicas.filter((r) => r !== leader);
      const frozen: number[] = [];
      try {
        for (const [i, follower] of followers.entries()) {
          cluster().freeze(follower);
          frozen.push(follower);
          ctx.log(`broker ${follower} (follower of leader ${leader}) frozen`);
          await sleep(i === 0 ? 15_000 : 10_000 + pauseMs);
        }
      } finally {
        for (const follower of frozen.reverse()) cluster().thaw(follower);
      }
      await inSync(ctx.lanes);
      return;
    }
    case 'kafka-rolling-restart':
      // As an operator upgrades: one broker at a time, each back in sync before the next goes.
      for (const nodeId of [1, 2, 3]) {
        await cluster().stop(nodeId);
        await sleep(pauseMs / 2);
        await cluster().start(nodeId);
        await inSync(ctx.lanes);
      }
      return;
    case 'topic-recreate':
      for (const each of ctx.lanes) await each.recreateTopic();
      await sleep(pauseMs);
      for (const each of ctx.lanes) await each.retryStuck(/does not exist/);
      return;
    case 'temporal-restart':
      await restart('temporal', pauseMs, ctx.temporalEnv);
      return;
    case 'store-restart':
      await Promise.all(ctx.stores.map((store) => restart(store, pauseMs)));
      return;
  }
}

/** Stops a server scripts/infra.sh started, keeps it down `downMs`, and starts it again. */
async function restart(service: string, downMs: number, env: Record<string, string> = {}): Promise<void> {
  await infra('down', service, env);
  await sleep(downMs);
  await infra('up', service, env);
}

/** A partition of the lane's topic, chosen by `random`, with a leader. */
async function partitionOf(lane: Lane, random: () => number): Promise<{ leader: number; replicas: number[] }> {
  const partitions = await waitFor(async () => {
    const all = await lane.partitions();
    return all.length > 0 && all.every((p) => p.leader >= 0) ? all : undefined;
  }, { timeoutMs: 60_000, intervalMs: 1_000, what: `the partitions of ${lane.topic} with leaders` });
  const chosen = partitions[Math.floor(random() * partitions.length)] as (typeof partitions)[number];
  return { leader: chosen.leader, replicas: chosen.replicas };
}

/** Every partition of every lane's topic has all its replicas in sync again. */
async function inSync(lanes: readonly Lane[]): Promise<void> {
  await waitFor(async () => {
    for (const lane of lanes) {
      if (!(await lane.partitions()).every((p) => p.leader >= 0 && p.isr.length === p.replicas.length)) return false;
    }
    return true;
  }, { timeoutMs: 180_000, intervalMs: 1_000, what: 'every partition of the lanes back in sync' });
}

/** Arms the process's trigger: its next send Kafka acknowledges kills it before anything is recorded. */
async function killAfterAck(target: ManagedProcess, file: string, kind: FaultKind): Promise<void> {
  writeFileSync(file, 'kill on the next acknowledged send\n');
  const fired = await target.exited(60_000).then(
    () => true,
    () => false,
  );
  rmSync(file, { force: true });
  if (!fired) {
    process.stderr.write(`[faults] ${kind}: no send was acknowledged within 60 s; killing the ${target.role} instead\n`);
    await target.kill9();
  }
  await target.start();
}

export type { LaneSpec, LaneVerdict } from './lane';
