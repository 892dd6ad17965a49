/** CPU seconds spent on the whole machine by kind of process (/proc), to say where a row's CPU went. */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ (`getconf CLK_TCK`): /proc counts CPU time in these. */
const TICKS_PER_SECOND = 100;

/** Each live process's CPU ticks, user time under its pid and system time under minus its pid, with its group's name. */
function snapshot(): Map<number, { group: string; ticks: number }> {
  const all = new Map<number, { group: string; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const group = groupOf(pid, comm, cmdline);
      all.set(pid, { group: `${group} user`, ticks: Number(fields[11]) });
      all.set(-pid, { group: `${group} sys`, ticks: Number(fields[12]) });
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

function groupOf(pid: number, comm: string, cmdline: string): string {
  if (pid === process.pid) return 'bench (writers)';
  // The Temporal server's own databases are on the same PostgreSQL: its backends say which database.
  if (comm.startsWith('postgres')) return /^postgres: \S+ temporal(_visibility)? /.test(cmdline) ? 'postgres (Temporal server)' : 'postgres';
  if (cmdline.includes('kafka')) return 'kafka';
  if (cmdline.includes('workers/bin/relay')) return 'relay';
  if (cmdline.includes('workers/bin/worker')) return 'worker';
  if (comm === 'temporal' || comm === 'temporal-server' || cmdline.includes('temporal server')) return 'temporal';
  if (cmdline.includes('secantus')) return 'secantusdb';
  return 'other';
}

/** Starts counting; `stop()` gives each group's CPU seconds since. */
export function machineCpu(): { stop: () => Record<string, number> } {
  const before = snapshot();
  return {
    stop: () => {
      const after = snapshot();
      const by: Record<string, number> = {};
      for (const [pid, now] of after) {
        const then = before.get(pid)?.ticks ?? 0;
        by[now.group] = (by[now.group] ?? 0) + (now.ticks - then) / TICKS_PER_SECOND;
      }
      return by;
    },
  };
}

export function formatCpu(by: Record<string, number>, events: number): string {
  return Object.entries(by)
    .filter(([, s]) => s > 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([group, s]) => `${group} ${s.toFixed(2)} s (${((s / events) * 1e6).toFixed(0)} µs/event)`)
    .join(', ');
}
