// DB writer: applies stock events from Kafka to PostgreSQL, exactly once in effect.
// Per chunk of a partition's batch, one transaction: lock the SKU rows, skip events at or
// below each SKU's stored sequence (duplicates), record gaps and conflicts, merge the stock
// change into one UPDATE per SKU, write orders in bulk, then commit; only after the commit
// is the Kafka offset committed. A crash in between re-delivers events the sequence check
// then skips.
import type { Consumer, KafkaMessage } from 'kafkajs';
import type { Db } from '../db/client.js';
import type { Logger } from '../log.js';
import { writerBatch, writerDuration, writerEvents } from '../metrics.js';
import { crashPoint } from '../ops/crash.js';
import { isOrderEvent, parseEvent, type StockEvent } from './events.js';

export interface WriterOptions {
  topic: string;
  maxBatch: number;
  concurrency: number;
}

export type AnomalyKind = 'UNREADABLE' | 'GAP' | 'CONFLICT' | 'UNKNOWN_SKU';

interface Anomaly {
  kind: AnomalyKind;
  skuId: string | null;
  offset: string;
  reason: string;
  payload: string;
}

export interface ApplyResult {
  applied: number;
  duplicates: number;
  anomalies: Anomaly[];
}

interface OrderRow {
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
  payload: string;
}

const isoOf = (ms: number) => new Date(ms).toISOString();

/** Applies one ordered chunk of a partition's messages in one transaction. */
export async function applyMessages(
  db: Db,
  topic: string,
  partition: number,
  messages: KafkaMessage[],
): Promise<ApplyResult> {
  const anomalies: Anomaly[] = [];
  const bySku = new Map<string, { event: StockEvent; offset: string; raw: string }[]>();
  for (const m of messages) {
    const raw = m.value?.toString() ?? '';
    const parsed = parseEvent(m.value);
    if (!parsed.ok) {
      anomalies.push({
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

  let applied = 0;
  let duplicates = 0;
  const end = writerDuration.startTimer();
  await db.$transaction(
    async (tx) => {
      const ids = [...bySku.keys()].sort();
      const rows = ids.length
        ? await tx.$queryRaw<
            {
              id: string;
              available: number;
              total_supplied: number;
              last_sequence: number;
              paused: boolean;
            }[]
          >`
            SELECT id, available, total_supplied, last_sequence, paused FROM skus WHERE id = ANY(${ids}::text[]) ORDER BY id FOR UPDATE`
        : [];
      const current = new Map(rows.map((r) => [r.id, r]));

      const skuUpdates: {
        id: string;
        available: number;
        supplied: number;
        last: number;
        paused: boolean;
      }[] = [];
      const inserts = new Map<string, OrderRow>();
      const updates = new Map<string, { status: string; seq: number; at: string }>();
      const audit: {
        skuId: string;
        seq: number;
        type: string;
        delta: number;
        stockAfter: number;
        orderId: string | null;
        payload: string;
        at: string;
      }[] = [];

      for (const [skuId, list] of bySku) {
        const row = current.get(skuId);
        if (!row) {
          for (const { offset, raw } of list)
            anomalies.push({
              kind: 'UNKNOWN_SKU',
              skuId,
              offset,
              reason: 'no such SKU in PostgreSQL',
              payload: raw,
            });
          continue;
        }
        list.sort((a, b) => a.event.seq - b.event.seq);
        let { available, total_supplied: supplied, last_sequence: last, paused } = row;
        const lastBefore = last;
        for (const { event: e, offset, raw } of list) {
          if (e.seq <= last) {
            duplicates += 1;
            continue;
          }
          if (e.seq > last + 1) {
            anomalies.push({
              kind: 'GAP',
              skuId,
              offset,
              reason: `expected sequence ${last + 1}, got ${e.seq}`,
              payload: raw,
            });
          }
          if (
            available + e.delta < 0 ||
            available + e.delta > supplied + (e.type === 'sku.restocked' ? e.quantity : 0)
          ) {
            // Never silently dropped: parked with its payload, raised as a conflict; the
            // sequence still advances so the partition keeps moving, and reconciliation
            // then sees the stock differ at equal sequences (DRIFT).
            anomalies.push({
              kind: 'CONFLICT',
              skuId,
              offset,
              reason: `applying delta ${e.delta} to available ${available} (supplied ${supplied}) is impossible`,
              payload: raw,
            });
          } else {
            available += e.delta;
            if (e.type === 'sku.restocked') supplied += e.quantity;
          }
          if (e.type === 'sku.paused') paused = true;
          if (e.type === 'sku.resumed') paused = false;
          last = e.seq;
          applied += 1;
          audit.push({
            skuId,
            seq: e.seq,
            type: e.type,
            delta: e.delta,
            stockAfter: e.stockAfter,
            orderId: isOrderEvent(e) ? e.orderId : null,
            payload: raw,
            at: isoOf(e.at),
          });
          if (isOrderEvent(e)) {
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
                payload: raw,
              });
            } else {
              const fresh = inserts.get(e.orderId);
              if (fresh)
                Object.assign(fresh, { status: e.status, updatedAt: isoOf(e.at), seq: e.seq });
              else updates.set(e.orderId, { status: e.status, seq: e.seq, at: isoOf(e.at) });
            }
          }
        }
        if (last !== lastBefore) skuUpdates.push({ id: skuId, available, supplied, last, paused });
      }

      if (skuUpdates.length) {
        await tx.$executeRaw`
          UPDATE skus s SET available = u.available, total_supplied = u.supplied, last_sequence = u.last,
                            paused = u.paused, updated_at = now()
          FROM unnest(${skuUpdates.map((u) => u.id)}::text[], ${skuUpdates.map((u) => u.available)}::int[],
                      ${skuUpdates.map((u) => u.supplied)}::int[], ${skuUpdates.map((u) => u.last)}::int[],
                      ${skuUpdates.map((u) => u.paused)}::bool[]) AS u(id, available, supplied, last, paused)
          WHERE s.id = u.id`;
      }
      if (inserts.size) {
        const o = [...inserts.values()];
        const inserted = await tx.$queryRaw<{ id: string }[]>`
          INSERT INTO orders (id, sku_id, user_id, quantity, status, idempotency_key, created_at, expires_at, updated_at, last_sequence)
          SELECT u.id, u.sku_id, u.user_id, u.quantity, u.status::order_status, u.idem, u.created_at, u.expires_at, u.updated_at, u.seq
          FROM unnest(${o.map((x) => x.id)}::uuid[], ${o.map((x) => x.skuId)}::text[], ${o.map((x) => x.userId)}::text[],
                      ${o.map((x) => x.quantity)}::int[], ${o.map((x) => x.status)}::text[], ${o.map((x) => x.idempotencyKey)}::text[],
                      ${o.map((x) => x.createdAt)}::timestamptz[], ${o.map((x) => x.expiresAt)}::timestamptz[],
                      ${o.map((x) => x.updatedAt)}::timestamptz[], ${o.map((x) => x.seq)}::int[])
               AS u(id, sku_id, user_id, quantity, status, idem, created_at, expires_at, updated_at, seq)
          ON CONFLICT DO NOTHING
          RETURNING id::text`;
        if (inserted.length < o.length) {
          // Already there (a re-delivery whose SKU sequence was not yet advanced cannot
          // happen, so this is a reused Idempotency-Key of an older order): raise it.
          const got = new Set(inserted.map((r) => r.id));
          const existing = await tx.order.findMany({
            where: { id: { in: o.filter((x) => !got.has(x.id)).map((x) => x.id) } },
            select: { id: true },
          });
          const known = new Set(existing.map((r) => r.id));
          for (const x of o) {
            if (!got.has(x.id) && !known.has(x.id)) {
              anomalies.push({
                kind: 'CONFLICT',
                skuId: x.skuId,
                offset: '',
                reason: `order ${x.id} collides with another order of user ${x.userId} and key ${x.idempotencyKey}`,
                payload: x.payload,
              });
            }
          }
        }
      }
      if (updates.size) {
        const ids2 = [...updates.keys()];
        const u = [...updates.values()];
        await tx.$executeRaw`
          UPDATE orders o SET status = u.status::order_status, updated_at = u.at, last_sequence = u.seq
          FROM unnest(${ids2}::uuid[], ${u.map((x) => x.status)}::text[], ${u.map((x) => x.seq)}::int[], ${u.map((x) => x.at)}::timestamptz[])
               AS u(id, status, seq, at)
          WHERE o.id = u.id AND o.last_sequence < u.seq`;
      }
      if (audit.length) {
        await tx.$executeRaw`
          INSERT INTO stock_events (sku_id, sequence, type, delta, stock_after, order_id, payload, occurred_at, applied_at)
          SELECT *, clock_timestamp() FROM unnest(${audit.map((a) => a.skuId)}::text[], ${audit.map((a) => a.seq)}::int[], ${audit.map((a) => a.type)}::text[],
                               ${audit.map((a) => a.delta)}::int[], ${audit.map((a) => a.stockAfter)}::int[], ${audit.map((a) => a.orderId)}::uuid[],
                               ${audit.map((a) => a.payload)}::jsonb[], ${audit.map((a) => a.at)}::timestamptz[])
          ON CONFLICT DO NOTHING`;
      }
      if (anomalies.length) {
        await tx.pipelineAnomaly.createMany({
          data: anomalies.map((a) => ({
            kind: a.kind,
            skuId: a.skuId,
            topic,
            partition,
            offset: a.offset,
            reason: a.reason,
            payload: a.payload,
          })),
        });
      }
    },
    { timeout: 60_000, maxWait: 30_000 },
  );
  end();
  writerBatch.observe(messages.length);
  writerEvents.inc({ result: 'applied' }, applied);
  writerEvents.inc({ result: 'duplicate' }, duplicates);
  for (const a of anomalies) writerEvents.inc({ result: a.kind.toLowerCase() });
  return { applied, duplicates, anomalies };
}

export class DbWriter {
  private running = false;

  constructor(
    private readonly db: Db,
    private readonly consumer: Consumer,
    private readonly opts: WriterOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    this.running = true;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.concurrency,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        for (let i = 0; i < batch.messages.length; i += this.opts.maxBatch) {
          if (!isRunning() || isStale()) return;
          const chunk = batch.messages.slice(i, i + this.opts.maxBatch);
          const result = await applyMessages(this.db, batch.topic, batch.partition, chunk);
          crashPoint('writer.after-commit');
          const last = chunk[chunk.length - 1]!.offset;
          resolveOffset(last);
          await this.consumer.commitOffsets([
            {
              topic: batch.topic,
              partition: batch.partition,
              offset: (BigInt(last) + 1n).toString(),
            },
          ]);
          for (const a of result.anomalies)
            this.log.error(
              { anomaly: { ...a, payload: undefined }, partition: batch.partition },
              'stock event anomaly',
            );
          await heartbeat();
        }
      },
    });
  }

  /** Stops fetching, lets the batch in hand finish and commit, then leaves the group. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.consumer.disconnect();
  }
}
