// Which SKUs have their waiting room on: the admitter paces each of them, and the waiting
// gauge counts their lines. Read from PostgreSQL (the durable record, so a Redis that lost
// its data cannot hide a queue) at most once per refresh, through a partial index; when
// PostgreSQL does not answer, the last list stands.
import type { Db } from '../clients/db.js';

/** Most queued SKUs one list holds (the most recently created first). */
export const MAX_QUEUED_SKUS = 10_000;

export class QueuedSkus {
  private list: readonly string[] = [];
  private readAt = 0;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    /** How long after its sale's end a SKU's queue still needs a pass (its data lives on). */
    private readonly afterEndMs: number,
    private readonly refreshMs = 1000,
  ) {}

  /** The SKUs whose waiting room is on and whose sale has not long ended. */
  async get(): Promise<readonly string[]> {
    if (Date.now() - this.readAt >= this.refreshMs) {
      this.pending ??= this.read().finally(() => {
        this.readAt = Date.now();
        this.pending = undefined;
      });
      await this.pending;
    }
    return this.list;
  }

  private async read(): Promise<void> {
    try {
      const rows = await this.db.sku.findMany({
        where: {
          waitingRoom: true,
          OR: [{ endsAt: null }, { endsAt: { gt: new Date(Date.now() - this.afterEndMs) } }],
        },
        select: { id: true },
        orderBy: { createdAt: 'desc' },
        take: MAX_QUEUED_SKUS,
      });
      this.list = rows.map((r) => r.id);
    } catch {
      // PostgreSQL unreachable: keep pacing the queues known so far.
    }
  }
}
