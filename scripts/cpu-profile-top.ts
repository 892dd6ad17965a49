/**
 * The top costs in V8 CPU profiles (node --cpu-prof), by self time, summed over every profile given:
 *
 *   npx tsx scripts/cpu-profile-top.ts [--top 25] FILE.cpuprofile...
 *
 * Each line: share of the sampled time, milliseconds, function, and where it lives (a package name
 * for node_modules, a repository path otherwise). `(idle)`, `(program)` and `(garbage collector)` are
 * V8's own buckets.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Where a function lives: `pkg` for node_modules/pkg/..., the repository path, or node's internals. */
export function place(url: string): string {
  if (url === '') return '';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1] ?? url;
  if (url.startsWith('node:')) return 'node';
  const repo = /\/(domain|workers|workflows|activities|scripts|test)\/.*$/.exec(url);
  return repo ? repo[0].slice(1) : url;
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const samples = profile.samples ?? [];
    const deltas = profile.timeDeltas ?? [];
    samples.forEach((id, i) => {
      const node = byId.get(id);
      if (!node) return;
      const us = deltas[i + 1] ?? deltas[i] ?? 0;
      const { functionName, url } = node.callFrame;
      const key = `${functionName || '(anonymous)'}\t${place(url)}`;
      selfUs.set(key, (selfUs.get(key) ?? 0) + us);
      totalUs += us;
    });
  }
  const top = [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
  console.log(`| share | ms | function | where |\n| ---: | ---: | --- | --- |`);
  for (const [key, us] of top) {
    const [fn, where] = key.split('\t');
    console.log(`| ${((100 * us) / totalUs).toFixed(1)}% | ${(us / 1000).toFixed(0)} | \`${fn}\` | ${where} |`);
  }
  const byPlace = new Map<string, number>();
  for (const [key, us] of selfUs) {
    const where = key.split('\t')[1] || '(V8)';
    byPlace.set(where, (byPlace.get(where) ?? 0) + us);
  }
  console.log(`\n| share | ms | where (all its functions) |\n| ---: | ---: | --- |`);
  for (const [where, us] of [...byPlace.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    console.log(`| ${((100 * us) / totalUs).toFixed(1)}% | ${(us / 1000).toFixed(0)} | ${where} |`);
  }
  console.log(`\n${positionals.length} profile(s), ${(totalUs / 1e6).toFixed(1)} s sampled`);
}

main();
