// CPU time of the server-side processes, read from /proc (Linux, services on this machine):
// user + system time of every thread of a process, so a figure per purchase does not
// depend on the load generator. Services elsewhere, or another OS, give no figure.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ: the unit of /proc/<pid>/stat times on Linux

/** CPU seconds (user + system) a process has used so far, or undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (in parentheses, which may hold spaces).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** Processes whose command line matches, e.g. every postgres process or the Kafka broker. */
export function pidsMatching(test: (comm: string, cmdline: string) => boolean): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const comm = readFileSync(`/proc/${e}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (test(comm, cmdline)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export const postgresPids = () => pidsMatching((comm) => comm === 'postgres');
export const kafkaPids = () => pidsMatching((_c, cmd) => / kafka\.Kafka /.test(`${cmd} `));

/** A group of processes (a stage) whose CPU time is measured over a window. */
export interface Stage {
  name: string;
  pids: () => number[];
}

/**
 * CPU seconds each stage used while `work` ran. Processes that start or end inside the
 * window count from their start or until their end (postgres backends come and go).
 */
export async function cpuDuring<T>(
  stages: Stage[],
  work: () => Promise<T>,
): Promise<{ result: T; seconds: Record<string, number> }> {
  const read = () =>
    stages.map((s) => new Map(s.pids().map((pid) => [pid, cpuSeconds(pid) ?? 0] as const)));
  const before = read();
  const result = await work();
  const after = read();
  const seconds: Record<string, number> = {};
  stages.forEach((s, i) => {
    let total = 0;
    for (const [pid, end] of after[i]!) total += end - (before[i]!.get(pid) ?? 0);
    seconds[s.name] = total;
  });
  return { result, seconds };
}
