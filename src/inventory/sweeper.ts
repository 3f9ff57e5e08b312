// Expires reservations past their TTL and returns their units. One leader sweeps at a
// time (redlock); the release script checks status and expiry itself, so two sweepers
// racing still return each unit exactly once.
import type { Logger } from '../log.js';
import { expiredOrders } from '../metrics.js';
import type { RedisClient } from '../redis/client.js';
import type { Leadership } from '../redis/locks.js';
import { PeriodicTask } from '../ops/periodic.js';
import type { Inventory } from './inventory.js';

export interface SweeperOptions {
  intervalMs: number;
  batchSize: number;
}

export class Sweeper {
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

  /** One pass over every partition, at most batchSize orders each; returns how many expired. */
  async sweepOnce(): Promise<number> {
    const keys = this.inventory.keys;
    let expired = 0;
    for (let p = 0; p < keys.partitions; p++) {
      if (this.leadership && !this.leadership.leads(100)) break;
      const due = await this.redis.zrangebyscore(
        keys.expiries(p),
        '-inf',
        Date.now(),
        'LIMIT',
        0,
        this.opts.batchSize,
      );
      const results = await Promise.all(
        due.map((member) => {
          const at = member.indexOf(':');
          return this.inventory.expire(member.slice(0, at), member.slice(at + 1));
        }),
      );
      expired += results.filter(Boolean).length;
    }
    if (expired > 0) {
      expiredOrders.inc(expired);
      this.log.info({ expired }, 'reservations expired');
    }
    return expired;
  }

  async stop(): Promise<void> {
    await this.task.stop();
    await this.leadership?.resign();
  }
}
