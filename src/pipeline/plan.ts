// The DB writer's functional core: given one ordered chunk of a partition's messages and
// the current PostgreSQL rows of their SKUs, decides what to write — which events are
// duplicates (at or below the SKU's sequence), gaps, conflicts or unreadable, the merged
// stock update per SKU, the orders to insert or update, the audit rows, and the drift
// alerts (PostgreSQL's stock after an event differing from Redis's). No I/O: writer.ts
// reads the rows and persists the plan in one transaction.
import type { KafkaMessage } from 'kafkajs';
import type { Observation } from '../alerts/incidents.js';
import { isOrderEvent, parseEvent, type StockEvent } from './events.js';

export type AnomalyKind = 'UNREADABLE' | 'GAP' | 'CONFLICT' | 'UNKNOWN_SKU' | 'PARKED';

export interface Anomaly {
  kind: AnomalyKind;
  skuId: string | null;
  offset: string;
  reason: string;
  payload: string;
}

export interface SkuRow {
  id: string;
  available: number;
  total_supplied: number;
  last_sequence: number;
  paused: boolean;
}

export interface OrderInsert {
  id: string;
  skuId: string;
  userId: string;
  quantity: number;
  status: string;
  idempotencyKey: string;
  createdAt: string;
  expiresAt: string;
  updatedAt: string;
  seq: number;
}

export interface AuditRow {
  skuId: string;
  seq: number;
  type: string;
  delta: number;
  stockAfter: number;
  orderId: string | null;
  payload: string;
  at: string;
}

export interface Plan {
  skuUpdates: { id: string; available: number; supplied: number; last: number; paused: boolean }[];
  inserts: OrderInsert[];
  updates: { id: string; status: string; seq: number; at: string }[];
  audit: AuditRow[];
  anomalies: Anomaly[];
  drifts: Observation[];
  applied: number;
  duplicates: number;
}

export interface Parsed {
  /** Readable events per SKU, in message order. */
  bySku: Map<string, { event: StockEvent; offset: string; raw: string }[]>;
  unreadable: Anomaly[];
}

const INT_MAX = 2 ** 31 - 1;
/** A number for an INTEGER column, or null when PostgreSQL could not hold it. */
export const asInt = (n: number) => (Number.isInteger(n) && Math.abs(n) <= INT_MAX ? n : null);

const isoOf = (ms: number) => new Date(ms).toISOString();

/** Reads a chunk's messages; what is not a valid event is an UNREADABLE anomaly. */
export function parseMessages(messages: KafkaMessage[]): Parsed {
  const unreadable: Anomaly[] = [];
  const bySku: Parsed['bySku'] = new Map();
  for (const m of messages) {
    const raw = m.value?.toString() ?? '';
    const parsed = parseEvent(m.value);
    if (!parsed.ok) {
      unreadable.push({
        kind: 'UNREADABLE',
        skuId: null,
        offset: m.offset,
        reason: parsed.reason,
        payload: raw.slice(0, 10000),
      });
      continue;
    }
    const list = bySku.get(parsed.event.sku) ?? [];
    list.push({ event: parsed.event, offset: m.offset, raw });
    bySku.set(parsed.event.sku, list);
  }
  return { bySku, unreadable };
}

/** Plans a chunk against the SKU rows PostgreSQL holds now (locked by the caller). */
export function planBatch(
  parsed: Parsed,
  rows: Map<string, SkuRow>,
  where: { topic: string; partition: number },
): Plan {
  const plan: Plan = {
    skuUpdates: [],
    inserts: [],
    updates: [],
    audit: [],
    anomalies: [...parsed.unreadable],
    drifts: [],
    applied: 0,
    duplicates: 0,
  };
  const inserts = new Map<string, OrderInsert>();
  const updates = new Map<string, { id: string; status: string; seq: number; at: string }>();
  for (const [skuId, list] of parsed.bySku) {
    const row = rows.get(skuId);
    if (!row) {
      for (const { offset, raw } of list)
        plan.anomalies.push({
          kind: 'UNKNOWN_SKU',
          skuId,
          offset,
          reason: 'no such SKU in PostgreSQL',
          payload: raw,
        });
      continue;
    }
    const ordered = [...list].sort((a, b) => a.event.seq - b.event.seq);
    let { available, total_supplied: supplied, last_sequence: last, paused } = row;
    const lastBefore = last;
    let drift: Observation | undefined;
    for (const { event: e, offset, raw } of ordered) {
      if (e.seq <= last) {
        plan.duplicates += 1;
        continue;
      }
      if (e.seq > last + 1)
        plan.anomalies.push({
          kind: 'GAP',
          skuId,
          offset,
          reason: `expected sequence ${last + 1}, got ${e.seq}`,
          payload: raw,
        });
      const restocked = e.type === 'sku.restocked' ? e.quantity : 0;
      if (available + e.delta < 0 || available + e.delta > supplied + restocked) {
        // Never silently dropped: raised as a conflict; the sequence still advances so the
        // partition keeps moving, and the stock differs from Redis's (DRIFT).
        plan.anomalies.push({
          kind: 'CONFLICT',
          skuId,
          offset,
          reason: `applying delta ${e.delta} to available ${available} (supplied ${supplied}) is impossible`,
          payload: raw,
        });
      } else {
        available += e.delta;
        supplied += restocked;
      }
      if (e.type === 'sku.paused') paused = true;
      if (e.type === 'sku.resumed') paused = false;
      last = e.seq;
      plan.applied += 1;
      if (available !== e.stockAfter || supplied !== e.suppliedAfter)
        drift = {
          skuId,
          kind: 'DRIFT',
          redisAvailable: asInt(e.stockAfter),
          dbAvailable: available,
          redisSequence: e.seq,
          dbSequence: e.seq,
          detail: {
            source: 'writer',
            sequence: e.seq,
            drift: e.stockAfter - available,
            redisAvailable: e.stockAfter,
            dbAvailable: available,
            redisSupplied: e.suppliedAfter,
            dbSupplied: supplied,
            topic: where.topic,
            partition: where.partition,
            offset,
          },
        };
      plan.audit.push({
        skuId,
        seq: e.seq,
        type: e.type,
        delta: e.delta,
        stockAfter: e.stockAfter,
        orderId: isOrderEvent(e) ? e.orderId : null,
        payload: raw,
        at: isoOf(e.at),
      });
      if (!isOrderEvent(e)) continue;
      if (e.type === 'order.reserved') {
        inserts.set(e.orderId, {
          id: e.orderId,
          skuId,
          userId: e.userId,
          quantity: e.quantity,
          status: 'reserved',
          idempotencyKey: e.idempotencyKey,
          createdAt: isoOf(e.createdAt),
          expiresAt: isoOf(e.expiresAt),
          updatedAt: isoOf(e.at),
          seq: e.seq,
        });
        continue;
      }
      // A later change of an order made in this chunk folds into its insert.
      const fresh = inserts.get(e.orderId);
      if (fresh) Object.assign(fresh, { status: e.status, updatedAt: isoOf(e.at), seq: e.seq });
      else updates.set(e.orderId, { id: e.orderId, status: e.status, seq: e.seq, at: isoOf(e.at) });
    }
    if (last !== lastBefore) plan.skuUpdates.push({ id: skuId, available, supplied, last, paused });
    if (drift) plan.drifts.push(drift);
  }
  plan.inserts = [...inserts.values()];
  plan.updates = [...updates.values()];
  return plan;
}
