// How far a partition's events are from PostgreSQL: the Redis stream (entries not yet
// relayed to Kafka) and the DB writer's lag on the matching Kafka partition. A SKU may only
// be rebuilt from PostgreSQL once every event issued before its state was lost got there.
import type { Admin } from 'kafkajs';
import type { KeySpace } from '../shared/keys.js';
import type { RedisClient } from '../clients/redis.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { RELAY_GROUP } from './relay.js';

/** XINFO answers flat [name, value, ...] lists. */
export function xinfoFields(reply: unknown): Record<string, unknown> {
  const list = reply as unknown[];
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

/** Orders stream entry ids (`<ms>-<seq>`). */
export function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

export class PipelineGauge {
  constructor(
    private readonly redis: RedisClient,
    private readonly admin: Admin,
    private readonly keys: KeySpace,
    private readonly topic: string,
    private readonly groupId: string,
  ) {}

  async kafkaLag(): Promise<Map<number, number>> {
    // Committed offsets first, end offsets after: read the other way round (or at once), a
    // commit landing between the two reads made the lag negative.
    const committed = await this.admin.fetchOffsets({
      groupId: this.groupId,
      topics: [this.topic],
    });
    const high = await this.admin.fetchTopicOffsets(this.topic);
    const done = new Map<number, number>();
    for (const t of committed)
      for (const p of t.partitions) done.set(p.partition, Number(p.offset));
    const lag = new Map<number, number>();
    for (const p of high) {
      const c = done.get(p.partition) ?? -1;
      lag.set(p.partition, Math.max(0, Number(p.high) - (c < 0 ? Number(p.low) : c)));
    }
    return lag;
  }

  /** Every partition's stream length in one round trip (one per node on a cluster). */
  async streamLengths(): Promise<Map<number, number>> {
    const streams = Array.from({ length: this.keys.partitions }, (_, p) => this.keys.events(p));
    // Auto-pipelining (every client has it) sends these as one batch per node.
    const lengths = await Promise.all(streams.map((s) => this.redis.xlen(s)));
    return new Map(lengths.map((n, p) => [p, n]));
  }

  /**
   * Waits until every event the partition's stream holds now has reached PostgreSQL: first
   * until the relay has delivered and acknowledged every entry up to the newest one seen
   * now, then until the DB writer has committed past Kafka's end offset seen after that.
   * Both are fixed marks, so traffic of other SKUs of the partition cannot keep the wait
   * going, and entries left in the stream after their acknowledgement do not count.
   * False when that did not happen within timeoutMs.
   */
  async settled(partition: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const stream = this.keys.events(partition);
    const newest = await this.redis.xrevrange(stream, '+', '-', 'COUNT', 1);
    const mark = newest[0]?.[0];
    if (mark !== undefined) {
      while (!(await this.relayedUpTo(stream, mark))) {
        if (Date.now() > deadline) return false;
        await sleep(50);
      }
    }
    const end = (await this.admin.fetchTopicOffsets(this.topic)).find(
      (p) => p.partition === partition,
    );
    const high = Number(end?.high ?? 0);
    for (;;) {
      const committed = await this.admin.fetchOffsets({
        groupId: this.groupId,
        topics: [this.topic],
      });
      const offset = Number(
        committed[0]?.partitions.find((p) => p.partition === partition)?.offset ?? -1,
      );
      if (offset >= high || (offset < 0 && high === Number(end?.low ?? 0))) return true;
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
  }

  /** The relay's group has been handed every entry up to `mark` and acknowledged them all. */
  private async relayedUpTo(stream: string, mark: string): Promise<boolean> {
    let groups: unknown[];
    try {
      groups = (await this.redis.xinfo('GROUPS', stream)) as unknown[];
    } catch {
      return false; // no stream or no group yet: the relay has not been there
    }
    const group = groups.map(xinfoFields).find((g) => g.name === RELAY_GROUP);
    if (!group || compareIds(String(group['last-delivered-id']), mark) < 0) return false;
    const pending = (await this.redis.xpending(stream, RELAY_GROUP, '-', mark, 1)) as unknown[];
    return pending.length === 0;
  }
}
