// DB writer: applies stock events from Kafka to PostgreSQL, exactly once in effect.
// Per chunk of a partition's batch, one transaction: lock the SKU rows, skip events at or
// below each SKU's stored sequence (duplicates), record gaps and conflicts, merge the stock
// change into one UPDATE per SKU, write orders in bulk, then commit; only after the commit
// is the Kafka offset committed. A crash in between re-delivers events the sequence check
// then skips.
// No single event can stop a partition: when PostgreSQL refuses a chunk for a reason of
// the data (db-failures.ts), the chunk is split in halves until the refused events are
// alone; each is parked (pipeline_anomalies: offset, partition, SQLSTATE and message, a
// storable payload), its SKU's sequence moves past it, an ANOMALY incident is opened in
// the same transaction, and the rest is applied. Transient failures are never parked:
// the chunk is retried with backoff.
// Each applied event carries Redis's stock after it: when PostgreSQL's differs, a DRIFT
// incident opens at once, under load too (the reconciler only judges equal sequences).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, ConsumerRunConfig, KafkaMessage } from 'kafkajs';
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { contextFrom, tracer } from '../shared/tracing.js';
import { IncidentStore } from '../alerts/incidents.js';
import type { Db, Prisma } from '../clients/db.js';
import type { Logger } from '../shared/log.js';
import { writerBatch, writerDuration, writerEvents, writerRestarts } from '../shared/metrics.js';
import { crashPoint } from '../shared/crash.js';
import { storableText } from '../shared/storable.js';
import { describeFailure, isPermanent } from './db-failures.js';
import { parseEvent } from './events.js';
import { asInt, parseMessages, planBatch, type Anomaly, type Plan, type SkuRow } from './plan.js';

export interface WriterOptions {
  topic: string;
  maxBatch: number;
  concurrency: number;
  /**
   * How long a consumer must have stayed in its group before a crash starts the restart
   * backoff over (default 60 s): one that joins and crashes again keeps backing off.
   */
  restartStableMs?: number;
}

export type { Anomaly, AnomalyKind } from './plan.js';

export interface ApplyResult {
  applied: number;
  duplicates: number;
  anomalies: Anomaly[];
}

/** The row that records an anomaly (its texts made storable), wherever it is written. */
function anomalyRow(a: Anomaly, topic: string, partition: number) {
  return {
    kind: a.kind,
    skuId: a.skuId,
    topic,
    partition,
    offset: a.offset,
    reason: storableText(a.reason),
    payload: storableText(a.payload),
  };
}

/**
 * With tracing on, for each traced message of a chunk: a consumer span continuing the
 * relay's traceparent header, and under it the span of the PostgreSQL transaction that
 * stores the chunk. Both end when that transaction does. Returns them innermost last.
 */
function traceChunk(messages: KafkaMessage[], topic: string, partition: number): Span[] {
  const t = tracer();
  if (!t) return [];
  const spans: Span[] = [];
  for (const m of messages) {
    const header = m.headers?.traceparent;
    const traceparent = Buffer.isBuffer(header) ? header.toString() : header;
    if (typeof traceparent !== 'string') continue;
    const consume = t.startSpan(
      `process ${topic}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.operation.type': 'process',
          'messaging.destination.name': topic,
          'messaging.destination.partition.id': String(partition),
          'messaging.kafka.offset': Number(m.offset),
          'messaging.batch.message_count': messages.length,
        },
      },
      contextFrom(traceparent),
    );
    const store = t.startSpan(
      'postgresql transaction',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'postgresql',
          'db.operation.name': 'transaction',
          'flashsale.events_in_transaction': messages.length,
        },
      },
      trace.setSpan(context.active(), consume),
    );
    spans.push(store, consume);
  }
  return spans;
}

/** Applies one ordered chunk of a partition's messages in one transaction. */
export async function applyMessages(
  db: Db,
  incidents: IncidentStore,
  topic: string,
  partition: number,
  messages: KafkaMessage[],
): Promise<ApplyResult> {
  const parsed = parseMessages(messages);
  const end = writerDuration.startTimer();
  const spans = traceChunk(messages, topic, partition);
  const plan = await db
    .$transaction(
      async (tx) => {
        const ids = [...parsed.bySku.keys()].sort();
        const rows = ids.length
          ? await tx.$queryRaw<SkuRow[]>`
            SELECT id, available, total_supplied, last_sequence, paused FROM skus WHERE id = ANY(${ids}::text[]) ORDER BY id FOR UPDATE`
          : [];
        const plan = planBatch(parsed, new Map(rows.map((r) => [r.id, r])), { topic, partition });
        await persist(tx, incidents, plan, { topic, partition });
        return plan;
      },
      { timeout: 60_000, maxWait: 30_000 },
    )
    .catch((err: unknown) => {
      for (const span of spans) span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    })
    .finally(() => {
      for (const span of spans) span.end();
    });
  end();
  writerBatch.observe(messages.length);
  writerEvents.inc({ result: 'applied' }, plan.applied);
  writerEvents.inc({ result: 'duplicate' }, plan.duplicates);
  for (const a of plan.anomalies) writerEvents.inc({ result: a.kind.toLowerCase() });
  return { applied: plan.applied, duplicates: plan.duplicates, anomalies: plan.anomalies };
}

/** Writes a plan: the imperative shell around planBatch. */
async function persist(
  tx: Prisma.TransactionClient,
  incidents: IncidentStore,
  plan: Plan,
  where: { topic: string; partition: number },
): Promise<void> {
  const { skuUpdates, inserts: o, updates: u, audit, anomalies } = plan;
  if (skuUpdates.length) {
    await tx.$executeRaw`
      UPDATE skus s SET available = u.available, total_supplied = u.supplied, last_sequence = u.last,
                        paused = u.paused, updated_at = now()
      FROM unnest(${skuUpdates.map((u) => u.id)}::text[], ${skuUpdates.map((u) => u.available)}::int[],
                  ${skuUpdates.map((u) => u.supplied)}::int[], ${skuUpdates.map((u) => u.last)}::int[],
                  ${skuUpdates.map((u) => u.paused)}::bool[]) AS u(id, available, supplied, last, paused)
      WHERE s.id = u.id`;
  }
  if (o.length) {
    await tx.$executeRaw`
      INSERT INTO orders (id, sku_id, user_id, quantity, status, idempotency_key, created_at, expires_at, updated_at, last_sequence)
      SELECT u.id, u.sku_id, u.user_id, u.quantity, u.status::order_status, u.idem, u.created_at, u.expires_at, u.updated_at, u.seq
      FROM unnest(${o.map((x) => x.id)}::uuid[], ${o.map((x) => x.skuId)}::text[], ${o.map((x) => x.userId)}::text[],
                  ${o.map((x) => x.quantity)}::int[], ${o.map((x) => x.status)}::text[], ${o.map((x) => x.idempotencyKey)}::text[],
                  ${o.map((x) => x.createdAt)}::timestamptz[], ${o.map((x) => x.expiresAt)}::timestamptz[],
                  ${o.map((x) => x.updatedAt)}::timestamptz[], ${o.map((x) => x.seq)}::int[])
           AS u(id, sku_id, user_id, quantity, status, idem, created_at, expires_at, updated_at, seq)
      ON CONFLICT (id) DO NOTHING`;
  }
  if (u.length) {
    await tx.$executeRaw`
      UPDATE orders o SET status = u.status::order_status, updated_at = u.at, last_sequence = u.seq
      FROM unnest(${u.map((x) => x.id)}::uuid[], ${u.map((x) => x.status)}::text[], ${u.map((x) => x.seq)}::int[], ${u.map((x) => x.at)}::timestamptz[])
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
      data: anomalies.map((a) => anomalyRow(a, where.topic, where.partition)),
    });
  }
  for (const d of plan.drifts) await incidents.openWithin(tx, d);
}

/**
 * Applies an ordered chunk; when PostgreSQL refuses it for a permanent reason, applies
 * each half in turn, down to the single events it refuses, which are parked. Transient
 * failures are thrown to the caller, which retries the whole chunk (what was applied is
 * then skipped as duplicates, parked events too).
 */
export async function applyOrPark(
  db: Db,
  incidents: IncidentStore,
  topic: string,
  partition: number,
  messages: KafkaMessage[],
): Promise<ApplyResult> {
  try {
    return await applyMessages(db, incidents, topic, partition, messages);
  } catch (err) {
    if (!isPermanent(err)) throw err;
    if (messages.length === 1)
      return parkMessage(db, incidents, topic, partition, messages[0]!, err);
    const mid = messages.length >> 1;
    const a = await applyOrPark(db, incidents, topic, partition, messages.slice(0, mid));
    const b = await applyOrPark(db, incidents, topic, partition, messages.slice(mid));
    return {
      applied: a.applied + b.applied,
      duplicates: a.duplicates + b.duplicates,
      anomalies: [...a.anomalies, ...b.anomalies],
    };
  }
}

/**
 * Parks one event PostgreSQL refused: the anomaly row, the SKU's sequence moved past it
 * (so the next event is no GAP; its stock change is not applied, so the SKU shows DRIFT
 * until repaired), and an ANOMALY incident with its webhook, in one transaction.
 */
async function parkMessage(
  db: Db,
  incidents: IncidentStore,
  topic: string,
  partition: number,
  m: KafkaMessage,
  failure: unknown,
): Promise<ApplyResult> {
  const raw = m.value?.toString() ?? '';
  const parsed = parseEvent(m.value);
  const event = parsed.ok ? parsed.event : undefined;
  const anomaly: Anomaly = {
    kind: 'PARKED',
    skuId: event?.sku ?? null,
    offset: m.offset,
    reason: describeFailure(failure),
    payload: storableText(raw),
  };
  const park = (a: Anomaly, alert: boolean) =>
    db.$transaction(async (tx) => {
      if (event) {
        const rows = await tx.$queryRaw<
          { available: number; last_sequence: number }[]
        >`SELECT available, last_sequence FROM skus WHERE id = ${event.sku} FOR UPDATE`;
        const row = rows[0];
        if (row && event.seq > row.last_sequence)
          await tx.$executeRaw`UPDATE skus SET last_sequence = ${event.seq}, updated_at = now() WHERE id = ${event.sku}`;
        if (row && alert)
          await incidents.openWithin(tx, {
            skuId: event.sku,
            kind: 'ANOMALY',
            redisAvailable: asInt(event.stockAfter),
            dbAvailable: row.available,
            redisSequence: event.seq,
            dbSequence: Math.max(event.seq, row.last_sequence),
            detail: {
              source: 'writer',
              parked: event.type,
              sequence: event.seq,
              reason: a.reason,
              topic,
              partition,
              offset: m.offset,
              redisAvailable: event.stockAfter,
              redisSupplied: event.suppliedAfter,
            },
          });
      }
      await tx.pipelineAnomaly.create({ data: anomalyRow(a, topic, partition) });
    });
  try {
    await park(anomaly, true);
  } catch (err) {
    if (!isPermanent(err)) throw err;
    // Even the record of it is refused: keep what surely fits, so the partition moves.
    anomaly.reason = `${anomaly.reason}; parking it failed too: ${describeFailure(err)}`;
    anomaly.payload = '';
    await park(anomaly, false);
  }
  writerEvents.inc({ result: 'parked' });
  return { applied: 0, duplicates: 0, anomalies: [anomaly] };
}

/** The wait before restarting a consumer kafkajs gave up on: doubling, at most 10 s. */
const restartDelayMs = (restarts: number) => Math.min(10_000, 250 * 2 ** Math.min(restarts, 6));

export class DbWriter {
  private running = false;
  /** Restarts since the consumer last stayed in its group for restartStableMs. */
  private restarts = 0;
  private joinedAt: number | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  /** A restarted run still starting: stop() waits for it, or it would outlive the writer. */
  private restarting: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly consumer: Consumer,
    private readonly opts: WriterOptions,
    private readonly log: Logger,
    /** Where parked events and drift are alerted; without webhooks when not given. */
    private readonly incidents = new IncidentStore(db, () => []),
  ) {}

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    this.running = true;
    // kafkajs restarts its consumer after a crash only when it deems the error retriable.
    // After any other it leaves the consumer disconnected for good, and the process looks
    // alive while nothing reaches PostgreSQL: KafkaJSGroupCoordinatorNotFound, for one,
    // when the consumer (re)joins its group as the broker comes back from a restart (seen
    // in the model-based soak: a writer started then consumed nothing for minutes).
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart && this.running) this.restartLater(payload.error);
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      this.joinedAt = Date.now();
    });
    await this.consumer.run(this.runConfig());
  }

  /** Runs the consumer again (kafkajs disconnected it when it crashed), after a backoff. */
  private restartLater(err: Error): void {
    const stableMs = this.opts.restartStableMs ?? 60_000;
    if (this.joinedAt !== undefined && Date.now() - this.joinedAt >= stableMs) this.restarts = 0;
    this.joinedAt = undefined;
    const delayMs = restartDelayMs(this.restarts);
    this.restarts += 1;
    writerRestarts.inc();
    this.log.error(
      { err: err.message, name: err.name, restartInMs: delayMs },
      'the Kafka consumer crashed and kafkajs will not restart it: restarting it',
    );
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (!this.running) return;
      // A crash while starting comes back through the CRASH event; a failure before that
      // (run refusing to start) is retried here.
      this.restarting = this.consumer.run(this.runConfig()).catch((e: unknown) => {
        if (this.running) this.restartLater(e instanceof Error ? e : new Error(String(e)));
      });
    }, delayMs);
  }

  private runConfig(): ConsumerRunConfig {
    return {
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.concurrency,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        for (let i = 0; i < batch.messages.length; i += this.opts.maxBatch) {
          if (!isRunning() || isStale()) return;
          const chunk = batch.messages.slice(i, i + this.opts.maxBatch);
          let result: ApplyResult | undefined;
          for (let attempt = 0; !result; attempt++) {
            try {
              result = await applyOrPark(
                this.db,
                this.incidents,
                batch.topic,
                batch.partition,
                chunk,
              );
            } catch (err) {
              // Transient (PostgreSQL down, connection lost, serialization, deadlock):
              // never parked; the same chunk again, with backoff, while this member
              // still owns the partition.
              this.log.warn(
                { err, partition: batch.partition, attempt },
                'applying a chunk failed; retrying',
              );
              await sleep(Math.min(5_000, 100 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
              if (!isRunning() || isStale()) return;
              await heartbeat().catch(() => undefined);
            }
          }
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
    };
  }

  /** Stops fetching, lets the batch in hand finish and commit, then leaves the group. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.restartTimer);
    // A consumer stopped while it is still joining would join after all, with nothing
    // left to stop it: let the start end (joined, or crashed) before disconnecting.
    await this.restarting;
    await this.consumer.disconnect();
  }
}
