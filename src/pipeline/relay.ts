// Relay: moves stock events from each partition's Redis stream to Kafka. Delivery is at
// least once: entries are acknowledged and deleted only after Kafka (acks=all) has them;
// the DB writer's sequence check makes duplicates harmless.
//
// Order: one owner per partition at a time (a lease), reading as one fixed consumer per
// partition. A new owner, after a crash, first re-reads that consumer's pending entries
// (ID 0), so the entries a dead relay read but never acknowledged go out first, in order.
//
// Latency: a partition with nothing to relay waits in a blocking read (XREADGROUP BLOCK)
// on a connection of its own, so a new entry leaves as soon as it is written instead of
// at the next poll, and an idle relay asks Redis once per RELAY_BLOCK_MS, not every 50 ms.
import type { Producer } from 'kafkajs';
import type { KeySpace } from '../shared/keys.js';
import { ACKS_ALL } from '../clients/kafka.js';
import type { Logger } from '../shared/log.js';
import { relayLag, relayed } from '../shared/metrics.js';
import { crashPoint } from '../shared/crash.js';
import type { RedisClient } from '../clients/redis.js';
import type { Leadership } from '../clients/locks.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { contextFrom, tracer, traceparentOf } from '../shared/tracing.js';

export const RELAY_GROUP = 'relay';

export interface RelayOptions {
  topic: string;
  batchSize: number;
  /** How long a read waits for new entries when a partition has none. */
  blockMs: number;
}

type Entry = [id: string, fields: string[]];

/** The traceparent a traced event carries (the purchase script appends it last). */
const TRACEPARENT_IN_EVENT = /"traceparent":"(00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})"/;

export class Relay {
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly groupsReady = new Set<number>();
  private readonly readers: RedisClient[] = [];

  /**
   * reader(partition): the connection for the partition's blocking reads (a blocked
   * connection can carry nothing else); the shared client does the rest.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly reader: (partition: number) => RedisClient,
    private readonly producer: Producer,
    private readonly keys: KeySpace,
    private readonly lease: (partition: number) => Leadership,
    private readonly opts: RelayOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.producer.connect();
    for (let p = 0; p < this.keys.partitions; p++) this.loops.push(this.loop(p));
  }

  private async loop(partition: number): Promise<void> {
    const lease = this.lease(partition);
    const reader = this.reader(partition);
    this.readers.push(reader);
    let backoff = 100;
    while (!this.stopped) {
      try {
        if (!(await lease.tick())) {
          await sleep(500);
          continue;
        }
        await this.pump(partition, lease, reader);
        backoff = 100;
      } catch (err) {
        if (this.stopped) break; // stop() closed the reader under a blocked read
        // Kafka or Redis unavailable: keep every entry (they stay pending) and retry.
        this.log.warn(
          { partition, err: err instanceof Error ? err.message : String(err), retryInMs: backoff },
          'relay waiting',
        );
        await sleep(backoff + Math.random() * backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
    await lease.resign();
  }

  /**
   * Creates the consumer group once per process, and again whenever Redis answers NOGROUP:
   * a Redis that lost its data (restart without persistence, failover) lost the group too.
   * Recreated at 0, so entries already in a recreated stream are relayed as well.
   */
  private async ensureGroup(stream: string, partition: number): Promise<void> {
    if (this.groupsReady.has(partition)) return;
    try {
      await this.redis.xgroup('CREATE', stream, RELAY_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String(err).includes('BUSYGROUP')) throw err;
    }
    this.groupsReady.add(partition);
  }

  /**
   * Relays one batch of a partition: pending entries first, then new ones. With a reader,
   * waits up to blockMs on it for new entries when there are none.
   */
  async pump(partition: number, lease?: Leadership, reader?: RedisClient): Promise<number> {
    try {
      return await this.pumpOnce(partition, lease, reader);
    } catch (err) {
      if (!String(err).includes('NOGROUP')) throw err;
      this.groupsReady.delete(partition);
      return this.pumpOnce(partition, lease, reader);
    }
  }

  private async pumpOnce(
    partition: number,
    lease?: Leadership,
    reader?: RedisClient,
  ): Promise<number> {
    const stream = this.keys.events(partition);
    await this.ensureGroup(stream, partition);
    const consumer = `p${partition}`;
    const count = this.opts.batchSize;
    // Two spellings of one read: ioredis types XREADGROUP's BLOCK only as a literal argument.
    const read = async (client: RedisClient, from: '0' | '>', block: boolean) => {
      const reply = (
        block
          ? await client.xreadgroup(
              'GROUP',
              RELAY_GROUP,
              consumer,
              'COUNT',
              count,
              'BLOCK',
              this.opts.blockMs,
              'STREAMS',
              stream,
              from,
            )
          : await client.xreadgroup(
              'GROUP',
              RELAY_GROUP,
              consumer,
              'COUNT',
              count,
              'STREAMS',
              stream,
              from,
            )
      ) as [string, Entry[]][] | null;
      return reply?.[0]?.[1] ?? [];
    };
    let entries = await read(this.redis, '0', false);
    if (entries.length === 0)
      entries = reader ? await read(reader, '>', true) : await read(this.redis, '>', false);
    if (entries.length === 0) return 0;
    if (lease && !lease.leads(1000)) return 0; // lease about to lapse: leave them for the next owner

    const t = tracer();
    const spans: Span[] = [];
    await this.producer
      .send({
        topic: this.opts.topic,
        acks: ACKS_ALL,
        messages: entries.map(([id, fields]) => {
          const value = fields[fields.indexOf('e') + 1] ?? '';
          const headers: Record<string, string> = { 'stream-id': id };
          // A traced event: a publish span continues its trace, and the message carries
          // that span's traceparent to the writer.
          const traceparent = t && TRACEPARENT_IN_EVENT.exec(value)?.[1];
          if (t && traceparent) {
            const span = t.startSpan(
              `publish ${this.opts.topic}`,
              {
                kind: SpanKind.PRODUCER,
                attributes: {
                  'messaging.system': 'kafka',
                  'messaging.operation.type': 'send',
                  'messaging.destination.name': this.opts.topic,
                  'messaging.destination.partition.id': String(partition),
                  'messaging.batch.message_count': entries.length,
                  'flashsale.stream_id': id,
                },
              },
              contextFrom(traceparent),
            );
            spans.push(span);
            headers.traceparent = traceparentOf(span);
          }
          return {
            partition,
            key: /"sku":"([A-Za-z0-9_-]+)"/.exec(value)?.[1] ?? null,
            value,
            headers,
          };
        }),
      })
      .catch((err: unknown) => {
        for (const span of spans) span.setStatus({ code: SpanStatusCode.ERROR });
        throw err;
      })
      .finally(() => {
        for (const span of spans) span.end();
      });
    crashPoint('relay.after-publish');
    const ids = entries.map(([id]) => id);
    await this.redis.fsAck(stream, RELAY_GROUP, ...ids);
    relayed.inc({ partition: String(partition) }, ids.length);
    const oldest = Number(ids[0]!.split('-')[0]);
    relayLag.set({ partition: String(partition) }, Math.max(0, Date.now() - oldest) / 1000);
    return ids.length;
  }

  /** Finishes the batches in hand (at most stopTimeoutMs: a send may wait on a dead broker). */
  async stop(stopTimeoutMs = 10_000): Promise<void> {
    this.stopped = true;
    for (const r of this.readers) r.disconnect(); // ends blocked reads now
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.loops),
      new Promise((r) => (timer = setTimeout(r, stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    await this.producer.disconnect().catch(() => undefined);
  }
}
