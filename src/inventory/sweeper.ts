// Expires reservations past their TTL and returns their units, as fast as Redis allows when
// many lapse together. One leader sweeps at a time (redlock); the release script checks
// status and expiry itself, so two sweepers racing still return each unit exactly once.
import type { Logger } from '../shared/log.js';
import { expiredOrders } from '../shared/metrics.js';
import type { RedisClient } from '../clients/redis.js';
import type { Leadership } from '../clients/locks.js';
import { PeriodicTask } from '../shared/periodic.js';
import type { Inventory } from './inventory.js';
import { parseExpiryMember } from '../shared/keys.js';

export interface SweeperOptions {
  intervalMs: number;
  /** Orders expired per script call (one call in flight per partition). */
  batchSize: number;
  /** Partitions swept at the same time. */
  parallel: number;
}

export class Sweeper {
  private stopping = false;
  private readonly task = new PeriodicTask(
    () => this.tick(),
    () => this.opts.intervalMs,
    (err) => this.log.error({ err }, 'sweep failed'),
  );

  constructor(
    private readonly redis: RedisClient,
    private readonly inventory: Inventory,
    private readonly leadership: Leadership | undefined,
    private readonly opts: SweeperOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.task.start();
  }

  private async tick(): Promise<number> {
    if (this.leadership && !(await this.leadership.tick())) return 0;
    return this.sweepOnce();
  }

  /**
   * One pass: every partition swept until nothing due is left in it, a few partitions at a
   * time, one script call of at most batchSize orders in flight per partition (so a
   * purchase waits behind at most a few of them). Returns how many reservations expired.
   */
  async sweepOnce(): Promise<number> {
    const partitions = this.inventory.keys.partitions;
    let next = 0;
    let expired = 0;
    const worker = async () => {
      for (let p = next++; p < partitions; p = next++) {
        const n = await this.sweepPartition(p); // not `expired += await`: workers interleave
        expired += n;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.parallel, partitions) }, worker));
    if (expired > 0) {
      expiredOrders.inc(expired);
      this.log.info({ expired }, 'reservations expired');
    }
    return expired;
  }

  private async sweepPartition(partition: number): Promise<number> {
    const index = this.inventory.keys.expiries(partition);
    let expired = 0;
    // Entries that stay due (SKU paused or being rebuilt) are stepped over, not re-read.
    let kept = 0;
    for (;;) {
      if (this.stopping || (this.leadership && !this.leadership.leads(100))) return expired;
      const due = await this.redis.zrangebyscore(
        index,
        '-inf',
        Date.now(),
        'LIMIT',
        kept,
        this.opts.batchSize,
      );
      const entries = due.map(parseExpiryMember);
      const outcomes = await this.inventory.expireMany(partition, entries);
      outcomes.forEach((o, i) => {
        if (o === 'expired') expired++;
        else if (o === 'kept' || o === 'broken') kept++;
        if (o === 'broken')
          this.log.error(
            entries[i],
            'a due reservation cannot expire: a key of it holds the wrong type or a malformed order; its units stay held until an operator repairs the SKU',
          );
      });
      if (due.length < this.opts.batchSize) return expired;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.task.stop();
    await this.leadership?.resign();
  }
}
