// Crash points for the kill -9 drills: inert unless CRASH_POINT names one, in which case
// the process kills itself (SIGKILL, no clean-up) the CRASH_AFTER-th time it passes there.
import type { Config } from './config.js';

export const CRASH_POINTS = [
  'relay.after-publish',
  'writer.after-commit',
  'api.after-purchase',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

let target: { point: string; after: number } | undefined;
let hits = 0;

export function armCrashPoints(cfg: Pick<Config, 'CRASH_POINT' | 'CRASH_AFTER'>): void {
  target = cfg.CRASH_POINT ? { point: cfg.CRASH_POINT, after: cfg.CRASH_AFTER } : undefined;
}

export function crashPoint(point: CrashPoint): void {
  if (target?.point !== point) return;
  hits += 1;
  if (hits >= target.after) process.kill(process.pid, 'SIGKILL');
}
