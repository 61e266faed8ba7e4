/** Small statistics helpers of the benchmark harness. */
import { readFileSync } from 'node:fs';

/** The median of `values` (NaN for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The `rank`th percentile (0–100, nearest rank) of values already sorted ascending (NaN for none). */
export function percentile(sortedValues: readonly number[], rank: number): number {
  if (sortedValues.length === 0) return Number.NaN;
  const index = Math.min(sortedValues.length - 1, Math.max(0, Math.ceil((rank / 100) * sortedValues.length) - 1));
  return sortedValues[index]!;
}

const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ; /proc/<pid>/stat counts in these ticks.

/** CPU time (user + system, milliseconds) a process has used so far; NaN when unreadable. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state is field 0, utime is field 11, stime field 12.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** CPU time of a process plus its direct children (e.g. nginx's master and worker). */
export function processTreeCpuMs(pid: number): number {
  let total = processCpuMs(pid);
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const child of children) total += processCpuMs(Number(child));
  } catch {
    // No children file (not Linux, or the process is gone): the process's own time only.
  }
  return total;
}
