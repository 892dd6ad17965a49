/**
 * Where the real servers of the test suite listen. scripts/infra.sh starts them on these
 * addresses (and prints the same settings with `scripts/infra.sh env`); the TXOUTBOX_* variables
 * point the tests elsewhere.
 */
export interface TestServers {
  /** Temporal frontend gRPC address. @default "127.0.0.1:7233" */
  temporalAddress: string;
  /** Temporal Web UI base URL. @default "http://127.0.0.1:8233" */
  temporalUiUrl: string;
  /** Kafka bootstrap brokers. @default ["127.0.0.1:9092"] */
  kafkaBrokers: string[];
  /** PostgreSQL connection URL of the `txoutbox` database. @default "postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox" */
  pgUrl: string;
}

export function testServers(env: NodeJS.ProcessEnv = process.env): TestServers {
  return {
    temporalAddress: env.TXOUTBOX_TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    temporalUiUrl: env.TXOUTBOX_TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233',
    kafkaBrokers: (env.TXOUTBOX_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()),
    pgUrl: env.TXOUTBOX_PG_URL ?? 'postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox',
  };
}

/** A name no other test (or earlier run) uses: for topics, task queues, databases, workflow ids. */
export function uniqueName(prefix: string): string {
  const rand = Math.random().toString(36).slice(2, 8);
  return `${prefix}-${Date.now().toString(36)}-${rand}`;
}

/** Polls `condition` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  condition: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 100, what = 'condition' }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const suffix = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms${suffix}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
