// Durability: what Redis's persistence settings promise about acknowledged purchases.
// Read at start-up (and again whenever the connection comes back, since a restart or a
// failover can bring other settings), stated in one log line and a gauge, and checked
// against REDIS_DURABILITY: in production a weaker promise refuses to start. So does a
// Redis that may evict keys (a maxmemory with a policy other than noeviction): an evicted
// order, holding or claim is a lost purchase, a buyer past their limit or a retry that
// buys twice, whatever the persistence.
import { Cluster, ReplyError, type Redis } from 'ioredis';
import client from 'prom-client';
import { withDeadline } from '../shared/deadline.js';
import type { Logger } from '../shared/log.js';
import { registry } from '../shared/metrics.js';
import type { RedisClient } from './redis.js';

/** The promises, weakest first. */
export const DURABILITY_PROMISES = ['none', 'everysec', 'always'] as const;
export type Durability = (typeof DURABILITY_PROMISES)[number];
/** `unknown`: Redis would not say (CONFIG refused or renamed) or did not answer. */
export type ObservedDurability = Durability | 'unknown';

export const PROMISE_TEXT: Record<ObservedDurability, string> = {
  always: 'always: an acknowledged purchase survives a Redis crash',
  everysec: 'everysec: up to about a second of acknowledged purchases can be lost',
  none: 'none: a restart loses every purchase not yet in PostgreSQL',
  unknown: 'unknown: Redis did not tell its persistence settings, so no promise is known to hold',
};

export type NodeSettings =
  | {
      node: string;
      appendonly: string;
      appendfsync: string;
      /** Bytes; '0' is no limit. */
      maxmemory?: string;
      maxmemoryPolicy?: string;
    }
  | { node: string; error: string };

/** Whether a node drops keys of its own accord once full. */
export function evicts(s: Exclude<NodeSettings, { error: string }>): boolean {
  return Number(s.maxmemory ?? '0') > 0 && (s.maxmemoryPolicy ?? 'noeviction') !== 'noeviction';
}

/**
 * The promise of one node's settings. `appendfsync no` leaves flushing to the OS (about
 * 30 s on Linux), so it promises no more than `none` against a machine crash.
 */
export function promiseOf(s: { appendonly: string; appendfsync: string }): Durability {
  if (s.appendonly !== 'yes') return 'none';
  if (s.appendfsync === 'always') return 'always';
  if (s.appendfsync === 'everysec') return 'everysec';
  return 'none';
}

const rank = (d: Durability) => DURABILITY_PROMISES.indexOf(d);

/** Whether what Redis promises is at least what is required. */
export function satisfies(actual: ObservedDurability, required: Durability): boolean {
  if (required === 'none') return true;
  return actual !== 'unknown' && rank(actual) >= rank(required);
}

export interface DurabilityReport {
  required: Durability;
  /** The weakest promise over every master (a write lands on one of them). */
  actual: ObservedDurability;
  /** Some master may evict keys: refused whatever the promise. */
  evicting: boolean;
  ok: boolean;
  /** What Redis has, node by node, e.g. `127.0.0.1:6379 appendonly=no appendfsync=everysec`. */
  redis: string;
}

/** Pure: the report for the settings read from every master. */
export function assess(nodes: NodeSettings[], required: Durability): DurabilityReport {
  let actual: ObservedDurability = nodes.length === 0 ? 'unknown' : 'always';
  let evicting = false;
  for (const n of nodes) {
    const p = 'error' in n ? 'unknown' : promiseOf(n);
    if (p === 'unknown' || actual === 'unknown') actual = 'unknown';
    else if (rank(p) < rank(actual)) actual = p;
    if (!('error' in n) && evicts(n)) evicting = true;
  }
  const redis =
    nodes.length === 0
      ? 'no master answered'
      : nodes
          .map((n) =>
            'error' in n
              ? `${n.node} ${n.error}`
              : `${n.node} appendonly=${n.appendonly} appendfsync=${n.appendfsync}` +
                (evicts(n)
                  ? ` maxmemory=${n.maxmemory} maxmemory-policy=${n.maxmemoryPolicy}`
                  : ''),
          )
          .join('; ');
  return { required, actual, evicting, ok: satisfies(actual, required) && !evicting, redis };
}

const EVICTION_TEXT =
  'Redis may evict keys: orders, holdings and Idempotency-Key claims could vanish (a lost ' +
  'purchase, a buyer past their limit, a retry that buys twice); run it with ' +
  'maxmemory-policy noeviction';

/**
 * What falls short in a report that is not ok, for the refusal and the log line alike,
 * each said the caller's way: eviction alone (`evictionOnly`), or the promise (`weaker`)
 * and eviction if any.
 */
function shortfall(report: DurabilityReport, weaker: string, evictionOnly: string): string {
  if (satisfies(report.actual, report.required)) return evictionOnly;
  return report.evicting ? `${weaker}; and ${EVICTION_TEXT}` : weaker;
}

export class DurabilityError extends Error {
  constructor(readonly report: DurabilityReport) {
    const weaker =
      `REDIS_DURABILITY=${report.required} but Redis promises ${report.actual} (${report.redis}); ` +
      `run Redis with appendonly yes and appendfsync ${report.required === 'always' ? 'always' : 'everysec or always'}, ` +
      'or set REDIS_DURABILITY to what it has';
    super(shortfall(report, weaker, `${EVICTION_TEXT} (${report.redis})`));
    this.name = 'DurabilityError';
  }
}

const gauge = new client.Gauge({
  name: 'flashsale_redis_durability',
  help: 'The durability promise Redis persistence gives (1 on the promise that holds), and the one REDIS_DURABILITY requires.',
  labelNames: ['promise', 'required'] as const,
  registers: [registry],
});

function setGauge(report: DurabilityReport): void {
  gauge.reset();
  for (const p of [...DURABILITY_PROMISES, 'unknown'] as const)
    gauge.set({ promise: p, required: report.required }, p === report.actual ? 1 : 0);
}

async function readNode(node: Redis, timeoutMs: number): Promise<NodeSettings> {
  const name = `${node.options.host ?? '127.0.0.1'}:${node.options.port ?? 6379}`;
  const get = async (parameter: string) => {
    const reply = (await node.config('GET', parameter)) as string[];
    return reply[1] ?? '(not set)';
  };
  try {
    const [appendonly, appendfsync, maxmemory, maxmemoryPolicy] = await withDeadline(
      Promise.all([
        get('appendonly'),
        get('appendfsync'),
        get('maxmemory'),
        get('maxmemory-policy'),
      ]),
      timeoutMs,
    );
    return { node: name, appendonly, appendfsync, maxmemory, maxmemoryPolicy };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // A reply error is Redis refusing CONFIG (renamed, ACL); anything else is no answer.
    return {
      node: name,
      error: err instanceof ReplyError ? `CONFIG refused: ${message}` : `unreachable: ${message}`,
    };
  }
}

/** Reads appendonly and appendfsync from the node, or from every master of a cluster. */
export async function readPersistence(
  redis: RedisClient,
  timeoutMs = 5000,
): Promise<NodeSettings[]> {
  if (!(redis instanceof Cluster)) return [await readNode(redis, timeoutMs)];
  if (redis.status !== 'ready') {
    await withDeadline(
      new Promise<void>((resolve) => redis.once('ready', () => resolve())),
      timeoutMs,
    ).catch(() => undefined);
  }
  return Promise.all(redis.nodes('master').map((n) => readNode(n, timeoutMs)));
}

export interface DurabilityOptions {
  required: Durability;
  /** Production refuses a weaker promise; elsewhere it is a warning. */
  production: boolean;
  timeoutMs?: number;
}

/**
 * States the promise at start-up and after every reconnection (one line each time it
 * changes). In production `start` throws DurabilityError when the promise is weaker than
 * required; elsewhere it does not wait for Redis.
 */
export class DurabilityWatch {
  private lastStated: string | undefined;
  private stopped = false;
  private readonly onReady = () => void this.check().catch(() => undefined);

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: DurabilityOptions,
    private readonly log: Logger,
  ) {}

  async check(): Promise<DurabilityReport> {
    const nodes = await readPersistence(this.redis, this.opts.timeoutMs ?? 5000);
    const report = assess(nodes, this.opts.required);
    if (this.stopped) return report;
    setGauge(report);
    const key = `${report.actual}|${report.redis}`;
    if (key !== this.lastStated) {
      this.lastStated = key;
      const fields = {
        durability: report.actual,
        REDIS_DURABILITY: report.required,
        redis: report.redis,
      };
      if (report.ok) this.log.info(fields, PROMISE_TEXT[report.actual]);
      else
        this.log[this.opts.production ? 'fatal' : 'warn'](
          fields,
          `${PROMISE_TEXT[report.actual]}; ${shortfall(report, `weaker than REDIS_DURABILITY=${report.required}`, `but ${EVICTION_TEXT}`)}`,
        );
    }
    return report;
  }

  async start(): Promise<void> {
    this.redis.on('ready', this.onReady);
    if (!this.opts.production) {
      void this.check().catch(() => undefined);
      return;
    }
    const report = await this.check();
    if (!report.ok) throw new DurabilityError(report);
  }

  stop(): void {
    this.stopped = true;
    this.redis.off('ready', this.onReady);
  }
}
