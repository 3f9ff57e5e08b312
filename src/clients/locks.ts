// Locks and leadership through redlock. With one Redis (or one cluster) redlock is a
// lease with a random token; a leader renews its lease well before it lapses, and stops
// acting the moment a renewal is refused or its lease runs out.
import Redlock, { ExecutionError, ResourceLockedError, type Lock } from 'redlock';
import type { RedisClient } from './redis.js';

export function createRedlock(redis: RedisClient): Redlock {
  const redlock = new Redlock([redis], { retryCount: 0, driftFactor: 0.01 });
  redlock.on('error', () => undefined); // failed attempts are reported to the caller
  return redlock;
}

/** Runs fn under a short lock; undefined when another holder has it. */
export async function withLock<T>(
  redlock: Redlock,
  resource: string,
  leaseMs: number,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  let lock: Lock;
  try {
    lock = await redlock.acquire([resource], leaseMs);
  } catch {
    return undefined;
  }
  try {
    return await fn();
  } finally {
    await lock.release().catch(() => undefined);
  }
}

/**
 * One leader at a time for a periodic role. `fencingToken` changes with every term, so a
 * writer can stamp its work and a deposed leader's late writes can be told apart.
 */
export class Leadership {
  private lock: Lock | undefined;
  private term = 0;

  constructor(
    private readonly redlock: Redlock,
    readonly resource: string,
    private readonly leaseMs: number,
  ) {}

  /** Acquires or renews the lease (once half of it has run); answers whether this process leads now. */
  async tick(): Promise<boolean> {
    try {
      const left = this.lock ? this.lock.expiration - Date.now() : 0;
      if (this.lock && left > this.leaseMs / 2) return true;
      if (this.lock && left > 50) {
        this.lock = await this.lock.extend(this.leaseMs);
      } else {
        this.lock = await this.redlock.acquire([this.resource], this.leaseMs);
        this.term += 1;
      }
      return true;
    } catch (err) {
      // A renewal Redis refused (the key holds another token: the lease was lost) ends the
      // lease now. A Redis that did not answer (away, hung, timed out) proves nothing: the
      // lease runs to the end it was granted, and a later tick renews it once Redis answers.
      // Dropping it here instead left the role idle after every blip until the key lapsed
      // in Redis, up to a whole lease (the sweeper, the relay's partitions, the reconciler).
      if (this.lock && this.leads() && !(await refused(err))) return true;
      this.lock = undefined;
      return false;
    }
  }

  /** Still leading, with enough lease left to act safely for `marginMs`. */
  leads(marginMs = 0): boolean {
    return this.lock !== undefined && this.lock.expiration > Date.now() + marginMs;
  }

  get fencingToken(): string | undefined {
    return this.lock ? `${this.lock.value}:${this.term}` : undefined;
  }

  async resign(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    if (lock) await lock.release().catch(() => undefined);
  }
}

/** Whether Redis answered and refused (another token holds the resource), not merely failed to answer. */
async function refused(err: unknown): Promise<boolean> {
  if (!(err instanceof ExecutionError)) return false;
  const stats = await Promise.all(err.attempts);
  return stats.some((s) =>
    [...s.votesAgainst.values()].some((e) => e instanceof ResourceLockedError),
  );
}
