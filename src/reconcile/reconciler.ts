// Reconciler: compares Redis with PostgreSQL per SKU and opens or resolves incidents.
//   DRIFT         equal sequences, different stock (available or supplied); the DB
//                 writer also opens it at once when an event's stockAfter differs
//   LAG           Redis ahead and PostgreSQL's sequence not moving for LAG_ALERT_AFTER_MS
//   REDIS_BEHIND  PostgreSQL ahead of Redis, or the Redis state missing
//   CONSERVATION  in PostgreSQL, available + units held by live orders != supplied
//   ANOMALY       opened by the DB writer when it parks an event PostgreSQL refused;
//                 resolved here once the SKU is clean at equal sequences (repaired)
// Events in flight are lag, not drift: PostgreSQL is read before Redis, so Redis is never
// seen behind what PostgreSQL had, and stock is only compared at equal sequences. A
// condition must hold in two passes in a row before it opens an incident.
// A pass resolves an open incident only when it could judge that kind for that SKU and
// found it clean (settled()): not seeing a condition is not the same as seeing it gone.
// A pass at unequal sequences cannot judge DRIFT, and an instance without history (the
// API's on-demand pass) cannot judge LAG unless the lag is 0 or PostgreSQL has moved on.
// One leader at a time (redlock); each leadership term takes a fencing token from a
// PostgreSQL sequence, and every incident write is refused by PostgreSQL once a later
// term has written.
import type { Db } from '../clients/db.js';
import type {
  IncidentKind,
  IncidentStore,
  Observation,
  OpenIncident,
} from '../alerts/incidents.js';
import { StaleLeaderError } from '../alerts/incidents.js';
import type { KeySpace } from '../shared/keys.js';
import type { Logger } from '../shared/log.js';
import { reconcilePasses, openIncidents } from '../shared/metrics.js';
import type { RedisClient } from '../clients/redis.js';
import type { Leadership } from '../clients/locks.js';
import { PeriodicTask } from '../shared/periodic.js';
import { compareSkus, type SkuComparison } from './compare.js';

export interface ReconcilerOptions {
  intervalMs: number;
  lagAlertAfterMs: number;
}

export interface PassReport {
  at: string;
  skus: number;
  findings: { sku: string; kind: IncidentKind }[];
  opened: { sku: string; kind: IncidentKind }[];
  resolved: { sku: string; kind: IncidentKind }[];
  led: boolean;
}

/**
 * Whether comparison `c` shows the open incident's condition gone. Incidents the DB writer
 * opened (DRIFT, ANOMALY) carry the sequence of the event they saw; a comparison older
 * than that cannot clear them.
 */
export function settled(i: OpenIncident, c: SkuComparison): boolean {
  const caughtUp = i.dbSequence === null || c.db.sequence >= i.dbSequence;
  switch (i.kind) {
    case 'REDIS_BEHIND':
      return c.redis !== null && c.lag !== null && c.lag >= 0;
    case 'CONSERVATION':
      return c.conservationGap === 0;
    case 'LAG':
      return (
        c.lag !== null && (c.lag <= 0 || (i.dbSequence !== null && c.db.sequence > i.dbSequence))
      );
    case 'DRIFT':
      return c.drift === 0 && c.redis?.supplied === c.db.supplied && caughtUp;
    case 'ANOMALY':
      // A parked event: resolved once both stores agree again at equal sequences (after a
      // repair, or a hand fix of PostgreSQL); the parked row itself stays for the record.
      return c.drift === 0 && c.conservationGap === 0 && caughtUp;
  }
}

export class Reconciler {
  private readonly task = new PeriodicTask(
    () => this.pass(),
    () => this.opts.intervalMs,
    (err) => this.log.error({ err }, 'reconciliation pass failed'),
  );
  /** sku -> PostgreSQL sequence last seen and since when it has not moved. */
  private readonly dbProgress = new Map<string, { sequence: number; since: number }>();
  /** Findings of the previous pass (`sku|kind`): a finding must repeat to open an incident. */
  private previous = new Set<string>();
  private fence: { term: string; token: bigint } | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly db: Db,
    private readonly keys: KeySpace,
    private readonly incidents: IncidentStore,
    private readonly leadership: Leadership | undefined,
    private readonly opts: ReconcilerOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.task.start();
  }

  async stop(): Promise<void> {
    await this.task.stop();
    await this.leadership?.resign();
  }

  get leads(): boolean {
    return this.leadership ? this.leadership.leads() : true;
  }

  /** The fencing token of the current term, drawn once per term from PostgreSQL. */
  private async fenceToken(): Promise<bigint | undefined> {
    if (!this.leadership) return undefined;
    const term = this.leadership.fencingToken;
    if (!term) return undefined;
    if (this.fence?.term !== term)
      this.fence = { term, token: await this.incidents.nextFenceToken() };
    return this.fence.token;
  }

  /** Classifies one comparison; `now` for the LAG clock. */
  classify(c: SkuComparison, now: number): IncidentKind[] {
    const kinds: IncidentKind[] = [];
    if (c.redis === null || (c.lag !== null && c.lag < 0)) kinds.push('REDIS_BEHIND');
    if (c.drift !== null && (c.drift !== 0 || c.redis?.supplied !== c.db.supplied))
      kinds.push('DRIFT');
    if (c.conservationGap !== 0) kinds.push('CONSERVATION');
    const progress = this.dbProgress.get(c.sku);
    if (!progress || progress.sequence !== c.db.sequence)
      this.dbProgress.set(c.sku, { sequence: c.db.sequence, since: now });
    else if (c.lag !== null && c.lag > 0 && now - progress.since > this.opts.lagAlertAfterMs)
      kinds.push('LAG');
    return kinds;
  }

  /**
   * One pass over every SKU (or only `scope`). Every instance reports its findings; only
   * the leader writes incidents (led: true).
   */
  async pass(scope?: string[]): Promise<PassReport> {
    const report: PassReport = {
      at: new Date().toISOString(),
      skus: 0,
      findings: [],
      opened: [],
      resolved: [],
      led: false,
    };
    report.led = this.leadership ? await this.leadership.tick() : true;
    const fence = report.led ? await this.fenceToken() : undefined;
    const now = Date.now();
    const current = new Set<string>();
    const observations = new Map<string, Observation>();
    const compared = new Map<string, SkuComparison>();
    let cursor: string | undefined;
    for (;;) {
      const page = scope
        ? cursor === undefined
          ? scope.map((id) => ({ id }))
          : []
        : await this.db.sku.findMany({
            select: { id: true },
            orderBy: { id: 'asc' },
            take: 500,
            ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
          });
      if (page.length === 0) break;
      cursor = page[page.length - 1]!.id;
      for (const c of await compareSkus(
        this.redis,
        this.db,
        this.keys,
        page.map((p) => p.id),
      )) {
        report.skus += 1;
        compared.set(c.sku, c);
        for (const kind of this.classify(c, now)) {
          const key = `${c.sku}|${kind}`;
          current.add(key);
          report.findings.push({ sku: c.sku, kind });
          observations.set(key, {
            skuId: c.sku,
            kind,
            redisAvailable: c.redis?.available ?? null,
            dbAvailable: c.db.available,
            redisSequence: c.redis?.sequence ?? null,
            dbSequence: c.db.sequence,
            detail: {
              lag: c.lag,
              drift: c.drift,
              conservationGap: c.conservationGap,
              heldByLiveOrders: c.db.heldByLiveOrders,
              dbSupplied: c.db.supplied,
              redisSupplied: c.redis?.supplied ?? null,
            },
          });
        }
      }
    }
    if (!report.led) {
      this.previous = current;
      return report;
    }
    try {
      // Open what was seen on this pass and the one before; resolve what is no longer seen.
      const opens = [...observations].filter(([key]) => this.previous.has(key)).map(([, o]) => o);
      const open = await this.incidents.openIncidents(scope);
      const gone = await this.vanished(
        open.filter((i) => !compared.has(i.skuId)).map((i) => i.skuId),
      );
      const resolves = open.filter((i) => {
        if (current.has(`${i.skuId}|${i.kind}`)) return false;
        const c = compared.get(i.skuId);
        return c ? settled(i, c) : gone.has(i.skuId);
      });
      if (this.leadership && !this.leadership.leads(500)) throw new StaleLeaderError();
      const { opened, resolved } = await this.incidents.apply(opens, resolves, fence);
      if (!scope) openIncidents.set(open.length + opened.length - resolved.length);
      for (const o of opened) {
        report.opened.push({ sku: o.skuId, kind: o.kind });
        this.log.warn(
          { sku: o.skuId, kind: o.kind, redis: o.redisAvailable, db: o.dbAvailable },
          'incident opened',
        );
      }
      for (const r of resolved) {
        report.resolved.push({ sku: r.skuId, kind: r.kind });
        this.log.info({ sku: r.skuId, kind: r.kind }, 'incident resolved');
      }
    } catch (err) {
      if (!(err instanceof StaleLeaderError)) throw err;
      this.log.warn('deposed while reconciling: writes refused by the fence');
      await this.leadership?.resign();
      report.led = false;
    }
    this.previous = current;
    reconcilePasses.inc({ result: report.findings.length ? 'findings' : 'clean' });
    return report;
  }

  /** Of SKUs with open incidents that no pass compared, those PostgreSQL no longer has. */
  private async vanished(skuIds: string[]): Promise<Set<string>> {
    if (skuIds.length === 0) return new Set();
    const there = await this.db.sku.findMany({
      where: { id: { in: [...new Set(skuIds)] } },
      select: { id: true },
    });
    const known = new Set(there.map((r) => r.id));
    return new Set(skuIds.filter((id) => !known.has(id)));
  }

  /** Live comparison of one SKU (admin endpoint). */
  async inspect(skuId: string): Promise<SkuComparison | undefined> {
    return (await compareSkus(this.redis, this.db, this.keys, [skuId]))[0];
  }
}
