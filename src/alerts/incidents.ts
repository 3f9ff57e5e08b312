// Incidents: one open per (SKU, kind), kept in PostgreSQL with first/last seen, the
// numbers on both sides and when it resolved. Opening or resolving one enqueues its
// webhook deliveries in the same transaction (an outbox), so no alert is lost between
// the decision and the send. Writes carry the reconciler's fencing token.
// The DB writer opens two kinds itself, in the transaction that applies the events:
//   ANOMALY  an event PostgreSQL refused was parked (pipeline_anomalies has it)
//   DRIFT    PostgreSQL's stock after an event differs from the event's stockAfter
import { randomUUID } from 'node:crypto';
import type { Db } from '../clients/db.js';
import { Prisma } from '../clients/db.js';
import { storableJson } from '../shared/storable.js';

export const INCIDENT_KINDS = ['DRIFT', 'LAG', 'REDIS_BEHIND', 'CONSERVATION', 'ANOMALY'] as const;
export type IncidentKind = (typeof INCIDENT_KINDS)[number];

export interface Observation {
  skuId: string;
  kind: IncidentKind;
  redisAvailable: number | null;
  dbAvailable: number | null;
  redisSequence: number | null;
  dbSequence: number | null;
  detail: Record<string, unknown>;
}

export class StaleLeaderError extends Error {
  constructor() {
    super('a later reconciler term has written: this leader is deposed');
    this.name = 'StaleLeaderError';
  }
}

export interface IncidentView {
  id: string;
  sku: string;
  kind: string;
  status: string;
  firstSeenAt: string;
  lastSeenAt: string;
  resolvedAt: string | null;
  redis: { available: number | null; sequence: number | null };
  db: { available: number | null; sequence: number | null };
  detail: unknown;
}

type Tx = Prisma.TransactionClient;

export interface OpenIncident {
  skuId: string;
  kind: IncidentKind;
  /** PostgreSQL's sequence when the incident was last seen. */
  dbSequence: number | null;
}

export class IncidentStore {
  constructor(
    private readonly db: Db,
    private readonly endpoints: () => string[],
  ) {}

  /** Runs fn in a transaction that first proves `fence` is the newest reconciler term. */
  async fenced<T>(fence: bigint | undefined, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.$transaction(async (tx) => {
      if (fence !== undefined) {
        const n =
          await tx.$executeRaw`UPDATE reconciler_fence SET token = ${fence}, updated_at = now() WHERE id = 1 AND token <= ${fence}`;
        if (n === 0) throw new StaleLeaderError();
      }
      return fn(tx);
    });
  }

  /**
   * The fencing token of a new reconciler term. Drawn from a PostgreSQL sequence, beside the
   * fence it is checked against, so it never goes backwards when Redis loses its data.
   */
  async nextFenceToken(): Promise<bigint> {
    const rows = await this.db.$queryRaw<
      { token: bigint }[]
    >`SELECT nextval('reconciler_fence_token_seq') AS token`;
    return BigInt(rows[0]!.token);
  }

  /** Opens the incident, or refreshes the open one; returns true when it was opened now. */
  async open(o: Observation, fence?: bigint): Promise<boolean> {
    return this.fenced(fence, (tx) => this.openIn(tx, o));
  }

  /** Resolves the open incident of (sku, kind) if any; returns true when one was resolved. */
  async resolve(skuId: string, kind: IncidentKind, fence?: bigint): Promise<boolean> {
    return this.fenced(fence, (tx) => this.resolveIn(tx, skuId, kind));
  }

  /**
   * A whole pass's changes in one fenced transaction: after a Redis failover a pass may
   * open thousands of incidents at once.
   */
  async apply(
    opens: Observation[],
    resolves: { skuId: string; kind: IncidentKind }[],
    fence?: bigint,
  ): Promise<{ opened: Observation[]; resolved: { skuId: string; kind: IncidentKind }[] }> {
    if (opens.length === 0 && resolves.length === 0) return { opened: [], resolved: [] };
    return this.fenced(fence, async (tx) => {
      const opened: Observation[] = [];
      const resolved: { skuId: string; kind: IncidentKind }[] = [];
      for (const o of opens) if (await this.openIn(tx, o)) opened.push(o);
      for (const r of resolves) if (await this.resolveIn(tx, r.skuId, r.kind)) resolved.push(r);
      return { opened, resolved };
    });
  }

  /** Opens (or refreshes) inside the caller's transaction: the DB writer's alerts. */
  openWithin(tx: Tx, o: Observation): Promise<boolean> {
    return this.openIn(tx, o);
  }

  private async openIn(tx: Tx, o: Observation): Promise<boolean> {
    const rows = await tx.$queryRaw<{ id: bigint; inserted: boolean }[]>`
      INSERT INTO alert_incidents (sku_id, kind, status, redis_available, db_available, redis_sequence, db_sequence, detail)
      VALUES (${o.skuId}, ${o.kind}, 'open', ${o.redisAvailable}, ${o.dbAvailable}, ${o.redisSequence}, ${o.dbSequence}, ${storableJson(o.detail)}::jsonb)
      ON CONFLICT (sku_id, kind) WHERE status = 'open' DO UPDATE SET
        last_seen_at = now(), redis_available = EXCLUDED.redis_available, db_available = EXCLUDED.db_available,
        redis_sequence = EXCLUDED.redis_sequence, db_sequence = EXCLUDED.db_sequence, detail = EXCLUDED.detail
      RETURNING id, (xmax = 0) AS inserted`;
    const row = rows[0]!;
    if (row.inserted) await this.enqueue(tx, row.id, 'incident.opened');
    return row.inserted;
  }

  private async resolveIn(tx: Tx, skuId: string, kind: IncidentKind): Promise<boolean> {
    const rows = await tx.$queryRaw<{ id: bigint }[]>`
      UPDATE alert_incidents SET status = 'resolved', resolved_at = now(), last_seen_at = now()
      WHERE sku_id = ${skuId} AND kind = ${kind} AND status = 'open' RETURNING id`;
    for (const r of rows) await this.enqueue(tx, r.id, 'incident.resolved');
    return rows.length > 0;
  }

  async openIncidents(skuIds?: string[]): Promise<OpenIncident[]> {
    const rows = await this.db.alertIncident.findMany({
      where: { status: 'open', ...(skuIds ? { skuId: { in: skuIds } } : {}) },
      select: { skuId: true, kind: true, dbSequence: true },
    });
    return rows.map((r) => ({
      skuId: r.skuId,
      kind: r.kind as IncidentKind,
      dbSequence: r.dbSequence,
    }));
  }

  async list(limit = 100): Promise<{ open: IncidentView[]; recent: IncidentView[] }> {
    const [open, recent] = await Promise.all([
      this.db.alertIncident.findMany({
        where: { status: 'open' },
        orderBy: { firstSeenAt: 'asc' },
      }),
      this.db.alertIncident.findMany({
        where: { status: 'resolved' },
        orderBy: { resolvedAt: 'desc' },
        take: limit,
      }),
    ]);
    return { open: open.map(view), recent: recent.map(view) };
  }

  private async enqueue(
    tx: Tx,
    incidentId: bigint,
    type: 'incident.opened' | 'incident.resolved',
  ): Promise<void> {
    const urls = this.endpoints();
    if (urls.length === 0) return;
    const incident = await tx.alertIncident.findUniqueOrThrow({ where: { id: incidentId } });
    const messageId = `msg_${randomUUID().replace(/-/g, '')}`;
    const payload = JSON.stringify({
      type,
      timestamp: new Date().toISOString(),
      data: view(incident),
    });
    for (const url of urls) {
      await tx.webhookEndpoint.upsert({ where: { url }, create: { url }, update: {} });
      await tx.webhookDelivery.create({
        data: {
          messageId,
          endpointUrl: url,
          incidentId,
          eventType: type,
          payload,
          status: 'pending',
        },
      });
    }
  }
}

function view(r: {
  id: bigint;
  skuId: string;
  kind: string;
  status: string;
  firstSeenAt: Date;
  lastSeenAt: Date;
  resolvedAt: Date | null;
  redisAvailable: number | null;
  dbAvailable: number | null;
  redisSequence: number | null;
  dbSequence: number | null;
  detail: unknown;
}): IncidentView {
  return {
    id: r.id.toString(),
    sku: r.skuId,
    kind: r.kind,
    status: r.status,
    firstSeenAt: r.firstSeenAt.toISOString(),
    lastSeenAt: r.lastSeenAt.toISOString(),
    resolvedAt: r.resolvedAt?.toISOString() ?? null,
    redis: { available: r.redisAvailable, sequence: r.redisSequence },
    db: { available: r.dbAvailable, sequence: r.dbSequence },
    detail: r.detail,
  };
}
