/**
 * An error and the errors it wraps, outermost first: each one's `cause` (with `originalError: true`,
 * kafkajs' `originalError` where it has no cause). At most `depth` of them; a chain that comes back
 * to an error already in it ends there.
 */
export function errorChain(err: unknown, options: { originalError?: boolean; depth?: number } = {}): Error[] {
  const depth = options.depth ?? 10;
  const chain: Error[] = [];
  for (let current: unknown = err; current instanceof Error && chain.length < depth && !chain.includes(current); ) {
    chain.push(current);
    current = current.cause ?? (options.originalError === true ? (current as { originalError?: unknown }).originalError : undefined);
  }
  return chain;
}
