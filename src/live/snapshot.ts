// The live view of a sale: per SKU its stock, sales rate, refusals and reservations about
// to expire, plus the pipeline's backlog and open incidents. Served as JSON, as an event
// stream, as a page, and as Prometheus gauges. Every part is read at most every few
// hundred milliseconds whoever asks (Sampled), so viewers and scrapes cost the stores a
// bounded number of reads; a part that cannot be read is null, never a guess.
import type { Db } from '../clients/db.js';
import type { RedisClient } from '../clients/redis.js';
import type { IncidentStore } from '../alerts/incidents.js';
import type { KeySpace } from '../shared/keys.js';
import { Sampled } from '../shared/metrics.js';
import { readPublishedCounters, type SummedSku } from './counters.js';
import { countExpiring, readSkuStates } from './sku-state.js';

/** The shape GET /v1/admin/live answers (the admin CLI reads these names). */
export interface LiveSku {
  sku: string;
  name: string;
  supplied: number | null;
  available: number | null;
  paused: boolean | null;
  startsAt: string | null;
  endsAt: string | null;
  soldPerSecond: number | null;
  unitsReserved: number | null;
  refusals: Record<string, number> | null;
  expiringNext60s: number | null;
}

export interface LiveSnapshot {
  at: string;
  skus: LiveSku[];
  pipeline: {
    streamEntries: number | null;
    consumerLag: number | null;
    relayLagSeconds: number | null;
  };
  incidents: { open: number | null };
}

/** SKUs the view shows unless asked for others: the most recently created ones. */
export const DEFAULT_SKU_COUNT = 100;
/** Most SKUs one request may name. */
export const MAX_SELECTED_SKUS = 100;
/** How old a part may be when served: under the event stream's one-second beat. */
const FRESH_MS = 500;
/** The SKU list (names, which SKUs) changes only when an operator creates one. */
const CATALOG_MS = 5000;
const INCIDENTS_MS = 2000;
/** Distinct SKU selections cached at once; more evict the oldest. */
const MAX_SELECTIONS = 32;

export interface LiveViewDeps {
  redis: RedisClient;
  db: Db;
  keys: KeySpace;
  incidents: IncidentStore;
  /** The DB writer's Kafka lag per partition (may be slow: never waited on for long). */
  kafkaLag: () => Promise<Map<number, number>>;
  kafkaLagRefreshMs: number;
}

interface CatalogEntry {
  sku: string;
  name: string;
}

/** Sampled values per key, at most `max` keys (the oldest goes first). */
class SampledByKey<T> {
  private readonly entries = new Map<string, Sampled<T>>();
  constructor(
    private readonly read: (key: string) => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly max: number,
  ) {}

  get(key: string): Promise<T | undefined> {
    let s = this.entries.get(key);
    if (!s) {
      if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
      s = new Sampled(() => this.read(key), this.maxAgeMs);
      this.entries.set(key, s);
    }
    return s.get(true);
  }
}

/** Waits for a refresh at most `ms`, then answers with what is known. */
async function within<T>(s: Sampled<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  const first = await Promise.race([s.get(true), late]);
  clearTimeout(timer);
  return first ?? s.get(false);
}

export class LiveView {
  private readonly views: SampledByKey<LiveSnapshot>;
  private readonly catalogs: SampledByKey<CatalogEntry[]>;
  /** The last SKU list read per selection: PostgreSQL down must not blind the page. */
  private readonly lastCatalog = new Map<string, CatalogEntry[]>();
  private readonly counters: Sampled<Map<string, SummedSku>>;
  private readonly streams: Sampled<{ entries: number; oldestAgeS: number }>;
  private readonly kafkaLag: Sampled<Map<number, number>>;
  private readonly openIncidents: Sampled<number>;
  private readonly gaugeView: Sampled<LiveSku[]>;

  constructor(private readonly d: LiveViewDeps) {
    this.views = new SampledByKey((key) => this.read(key), FRESH_MS, MAX_SELECTIONS);
    this.catalogs = new SampledByKey((key) => this.readCatalog(key), CATALOG_MS, MAX_SELECTIONS);
    this.counters = new Sampled(() => readPublishedCounters(d.redis, d.keys), FRESH_MS);
    this.streams = new Sampled(() => this.readStreams(), FRESH_MS);
    this.gaugeView = new Sampled(() => this.readGaugeSkus(), FRESH_MS);
    this.kafkaLag = new Sampled(d.kafkaLag, d.kafkaLagRefreshMs);
    this.openIncidents = new Sampled(
      async () => (await d.incidents.openIncidents()).length,
      INCIDENTS_MS,
    );
  }

  /** The SKUs of the default view, for the Prometheus gauges. */
  async gaugeSkus(): Promise<LiveSku[] | undefined> {
    return this.gaugeView.get(true);
  }

  /**
   * The default view's SKUs and their Redis state only: a scrape must not add the
   * pipeline's reads (every partition's stream) to those /metrics already makes.
   */
  private async readGaugeSkus(): Promise<LiveSku[]> {
    const catalog = await this.catalogs.get('');
    if (!catalog) throw new Error('the SKU list could not be read');
    const ids = catalog.map((c) => c.sku);
    const [states, expiring] = await Promise.all([
      readSkuStates(this.d.redis, this.d.keys, ids).catch(() => undefined),
      countExpiring(this.d.redis, this.d.keys, ids, Date.now()).catch(() => undefined),
    ]);
    return catalog.map(({ sku, name }): LiveSku => {
      const st = states?.get(sku);
      return {
        sku,
        name,
        supplied: st?.supplied ?? null,
        available: st?.available ?? null,
        paused: st?.paused ?? null,
        startsAt: st?.startsAt ?? null,
        endsAt: st?.endsAt ?? null,
        soldPerSecond: null,
        unitsReserved: null,
        refusals: null,
        expiringNext60s: expiring?.get(sku) ?? null,
      };
    });
  }

  /**
   * The view of the given SKUs (those that exist, in the order given), or of the most
   * recently created ones. Undefined only when the SKU list was never readable.
   */
  async snapshot(selection: readonly string[] = []): Promise<LiveSnapshot | undefined> {
    const snap = await this.views.get([...new Set(selection)].sort().join(','));
    if (!snap || selection.length < 2) return snap;
    // One cached view per set of SKUs; each caller gets them in the order it named them.
    const rank = new Map(selection.map((sku, i) => [sku, i]));
    const skus = [...snap.skus].sort((a, b) => rank.get(a.sku)! - rank.get(b.sku)!);
    return { ...snap, skus };
  }

  private async read(selectionKey: string): Promise<LiveSnapshot> {
    const catalog = await this.catalogs.get(selectionKey);
    if (!catalog) throw new Error('the SKU list could not be read');
    const ids = catalog.map((c) => c.sku);
    const now = Date.now();
    const [states, expiring, counters, streams, lag, open] = await Promise.all([
      readSkuStates(this.d.redis, this.d.keys, ids).catch(() => undefined),
      countExpiring(this.d.redis, this.d.keys, ids, now).catch(() => undefined),
      this.counters.get(true),
      this.streams.get(true),
      within(this.kafkaLag, 200),
      this.openIncidents.get(true),
    ]);
    return {
      at: new Date(now).toISOString(),
      skus: catalog.map(({ sku, name }): LiveSku => {
        const s = states?.get(sku);
        const c =
          counters && (counters.get(sku) ?? { unitsReserved: 0, soldPerSecond: 0, refusals: {} });
        return {
          sku,
          name,
          supplied: s?.supplied ?? null,
          available: s?.available ?? null,
          paused: s?.paused ?? null,
          startsAt: s?.startsAt ?? null,
          endsAt: s?.endsAt ?? null,
          soldPerSecond: c?.soldPerSecond ?? null,
          unitsReserved: c?.unitsReserved ?? null,
          refusals: c?.refusals ?? null,
          expiringNext60s: expiring?.get(sku) ?? null,
        };
      }),
      pipeline: {
        streamEntries: streams?.entries ?? null,
        consumerLag: lag ? [...lag.values()].reduce((a, b) => a + b, 0) : null,
        relayLagSeconds: streams?.oldestAgeS ?? null,
      },
      incidents: { open: open ?? null },
    };
  }

  /** The SKU list; when PostgreSQL cannot answer, the last one read (names rarely change). */
  private async readCatalog(selectionKey: string): Promise<CatalogEntry[]> {
    let list: CatalogEntry[];
    try {
      list = await this.queryCatalog(selectionKey);
    } catch (err) {
      const last = this.lastCatalog.get(selectionKey);
      if (last) return last;
      throw err;
    }
    this.lastCatalog.delete(selectionKey);
    if (this.lastCatalog.size >= MAX_SELECTIONS)
      this.lastCatalog.delete(this.lastCatalog.keys().next().value!);
    this.lastCatalog.set(selectionKey, list);
    return list;
  }

  private async queryCatalog(selectionKey: string): Promise<CatalogEntry[]> {
    const rows = selectionKey
      ? await this.d.db.sku.findMany({
          where: { id: { in: selectionKey.split(',') } },
          select: { id: true, name: true },
          orderBy: { id: 'asc' },
        })
      : await this.d.db.sku.findMany({
          select: { id: true, name: true },
          orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
          take: DEFAULT_SKU_COUNT,
        });
    return rows.map((r) => ({ sku: r.id, name: r.name }));
  }

  /**
   * Entries waiting in the partitions' streams, and how long the oldest has waited: the
   * relay deletes an entry once Kafka has it, so this is its lag whichever process runs it.
   */
  private async readStreams(): Promise<{ entries: number; oldestAgeS: number }> {
    const streams = Array.from({ length: this.d.keys.partitions }, (_, p) => this.d.keys.events(p));
    const replies = await Promise.all(
      streams.map((s) =>
        Promise.all([this.d.redis.xlen(s), this.d.redis.xrange(s, '-', '+', 'COUNT', 1)]),
      ),
    );
    const now = Date.now();
    let entries = 0;
    let oldestAgeS = 0;
    for (const [length, first] of replies) {
      entries += length;
      const id = first[0]?.[0];
      if (id) oldestAgeS = Math.max(oldestAgeS, (now - Number(id.split('-')[0])) / 1000);
    }
    return { entries, oldestAgeS: Math.round(oldestAgeS * 10) / 10 };
  }
}
