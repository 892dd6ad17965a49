import { errorChain } from '../../domain/outbox/error-chain';

describe('errorChain', () => {
  it('gives an error and its causes, outermost first; kafkajs originalError only when asked', () => {
    const root = new Error('Broker not connected');
    const kafkajs = Object.assign(new Error('retries exceeded'), { originalError: root });
    const outer = new Error('send failed', { cause: kafkajs });
    expect(errorChain(outer).map((e) => e.message)).toEqual(['send failed', 'retries exceeded']);
    expect(errorChain(outer, { originalError: true }).map((e) => e.message)).toEqual(['send failed', 'retries exceeded', 'Broker not connected']);
    expect(errorChain('not an error')).toEqual([]);
  });

  it('ends at a cycle and at its depth', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(errorChain(b).map((e) => e.message)).toEqual(['b', 'a']);
    let deep = new Error('0');
    for (let i = 1; i < 30; i++) deep = new Error(String(i), { cause: deep });
    expect(errorChain(deep)).toHaveLength(10);
    expect(errorChain(deep, { depth: 3 }).map((e) => e.message)).toEqual(['29', '28', '27']);
  });
});
