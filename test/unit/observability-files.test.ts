/**
 * The alert rules and the Grafana dashboard only name metrics the relay and worker really export,
 * and the alerts cover what issue 6 asks for.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OutboxMetrics } from '../../workers/process/metrics';

const DIR = join(__dirname, '..', '..', 'scripts', 'observability');

function exported(): Set<string> {
  const metrics = new OutboxMetrics();
  metrics.observeStore({ stats: async () => ({ counts: { pending: 0, published: 0, stuck: 0, compensated: 0, discarded: 0 }, oldestPending: null }) });
  return new Set(metrics.registry.getMetricsAsArray().map((m) => m.name));
}

function referenced(text: string): string[] {
  const names = text.match(/txoutbox_[a-z_]+/g) ?? [];
  return [...new Set(names.map((n) => n.replace(/_(bucket|count|sum)$/, '')))];
}

describe('observability files', () => {
  test('every metric in the alert rules is exported', () => {
    const names = referenced(readFileSync(join(DIR, 'alerts.yml'), 'utf8'));
    const known = exported();
    expect(names.filter((n) => !known.has(n))).toEqual([]);
    expect(names.length).toBeGreaterThan(3);
  });

  test('the alerts cover stuck events, persistent failures, a retry spike and lag', () => {
    const text = readFileSync(join(DIR, 'alerts.yml'), 'utf8');
    for (const alert of ['TxoutboxStuckEvents', 'TxoutboxPublishFailuresPersist', 'TxoutboxRetrySpike', 'TxoutboxLagHigh']) {
      expect(text).toContain(`alert: ${alert}`);
    }
  });

  test('the Grafana dashboard is valid JSON and every metric in it is exported', () => {
    const dashboard = JSON.parse(readFileSync(join(DIR, 'grafana-dashboard.json'), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const names = referenced(dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n'));
    const known = exported();
    expect(names.filter((n) => !known.has(n))).toEqual([]);
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(8);
  });
});
