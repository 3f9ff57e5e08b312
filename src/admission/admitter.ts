// Admits waiting-room tickets at each queued SKU's pace: a pass every few hundred ms runs
// lua/admit-6.lua once per SKU whose waiting room is on. It runs in the sweeper role,
// with a leader of its own (a redlock lease, as the sweeper's). The lease only saves work:
// the pace's state lives in Redis and each pass is atomic, so two admitters racing (a
// lease lost mid-pass) share one SKU's credit instead of admitting twice as fast.
import type { RedisClient } from '../clients/redis.js';
import type { Leadership } from '../clients/locks.js';
import type { KeySpace } from '../shared/keys.js';
import type { Logger } from '../shared/log.js';
import { queueAdmitted } from '../shared/metrics.js';
import { PeriodicTask } from '../shared/periodic.js';
import type { QueuedSkus } from './queued-skus.js';
import { QUEUE_AFTER_END_MS, QUEUE_IDLE_MS, REMEMBER_LAPSED_MS } from './waiting-room.js';

export interface AdmitterOptions {
  intervalMs: number;
  /** Most tickets of one SKU admitted per pass (bounds one script's time in Redis). */
  maxPerPass: number;
  /** SKUs whose pass runs at the same time. */
  parallel: number;
  rememberLapsedMs: number;
}

export const ADMITTER_DEFAULTS: AdmitterOptions = {
  intervalMs: 100,
  maxPerPass: 1000,
  parallel: 64,
  rememberLapsedMs: REMEMBER_LAPSED_MS,
};

export class Admitter {
  private stopping = false;
  private readonly task = new PeriodicTask(
    () => this.tick(),
    () => this.opts.intervalMs,
    (err) => this.log.error({ err }, 'admission pass failed'),
  );

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly queued: QueuedSkus,
    private readonly leadership: Leadership | undefined,
    private readonly opts: AdmitterOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.task.start();
  }

  private async tick(): Promise<number> {
    if (this.leadership && !(await this.leadership.tick())) return 0;
    return this.admitOnce();
  }

  /** One pass over every queued SKU; answers how many tickets it admitted. */
  async admitOnce(): Promise<number> {
    const skus = await this.queued.get();
    let admitted = 0;
    let failure: unknown;
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < skus.length; i = next++) {
        if (this.stopping || (this.leadership && !this.leadership.leads(100))) return;
        try {
          admitted += await this.admitSku(skus[i]!);
        } catch (err) {
          failure ??= err; // one SKU's failure does not hold up the others
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.parallel, skus.length) }, worker));
    if (failure) this.log.warn({ err: failure }, 'admission pass failed for some SKUs');
    return admitted;
  }

  private async admitSku(sku: string): Promise<number> {
    const k = this.keys.forSku(sku);
    const q = this.keys.queue(sku);
    const reply = await this.redis.fsAdmit(
      k.sku,
      q.waiting,
      q.admitted,
      q.tickets,
      q.buyers,
      q.state,
      this.opts.maxPerPass,
      this.opts.rememberLapsedMs,
      QUEUE_IDLE_MS,
      QUEUE_AFTER_END_MS,
    );
    // A missing SKU state (-1) waits for its rebuild, which a buyer's request starts.
    const n = Math.max(0, Number(reply[0]));
    if (n > 0) queueAdmitted.inc({ sku }, n);
    return n;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.task.stop();
    await this.leadership?.resign();
  }
}
