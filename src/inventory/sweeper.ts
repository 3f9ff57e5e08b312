// Expires reservations past their TTL and returns their units. One leader sweeps at a
// time (redlock); the release script checks status and expiry itself, so two sweepers
// racing still return each unit exactly once.
import type { Logger } from '../shared/log.js';
import { expiredOrders } from '../shared/metrics.js';
import type { RedisClient } from '../clients/redis.js';
import type { Leadership } from '../clients/locks.js';
import { PeriodicTask } from '../shared/periodic.js';
import type { Inventory } from './inventory.js';
import { parseExpiryMember } from '../shared/keys.js';

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
          const { sku, orderId } = parseExpiryMember(member);
          return this.inventory.expire(sku, orderId);
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
