// Prometheus metrics (prom-client), one registry per process.
import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

export const purchases = new client.Counter({
  name: 'flashsale_purchases_total',
  help: 'Purchase requests by outcome (created, replayed, or the error code) and SKU (empty when the SKU is unknown or the request was refused before its SKU was consulted).',
  labelNames: ['outcome', 'sku'] as const,
  registers: [registry],
});

export const unitsReserved = new client.Counter({
  name: 'flashsale_units_reserved_total',
  help: 'Units reserved by new purchases (not replays), per SKU.',
  labelNames: ['sku'] as const,
  registers: [registry],
});

export const purchaseLatency = new client.Histogram({
  name: 'flashsale_purchase_duration_seconds',
  help: 'Purchase request latency, from first byte to answer.',
  buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export const purchaseBatchSize = new client.Histogram({
  name: 'flashsale_purchase_batch_size',
  help: 'Purchases decided per call of the purchase script (those of one SKU in hand together).',
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
  registers: [registry],
});

export const httpErrors = new client.Counter({
  name: 'flashsale_http_errors_total',
  help: 'Error answers by code.',
  labelNames: ['code'] as const,
  registers: [registry],
});

export const expiredOrders = new client.Counter({
  name: 'flashsale_orders_expired_total',
  help: 'Reservations expired by the sweeper.',
  registers: [registry],
});

export const relayed = new client.Counter({
  name: 'flashsale_relay_events_total',
  help: 'Stock events relayed from Redis streams to Kafka, per partition.',
  labelNames: ['partition'] as const,
  registers: [registry],
});

export const relayLag = new client.Gauge({
  name: 'flashsale_relay_lag_seconds',
  help: 'Age of the oldest entry in the last relayed batch, per partition.',
  labelNames: ['partition'] as const,
  registers: [registry],
});

export const writerBatch = new client.Histogram({
  name: 'flashsale_writer_batch_events',
  help: 'Events per DB writer transaction.',
  buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000],
  registers: [registry],
});

export const writerDuration = new client.Histogram({
  name: 'flashsale_writer_batch_duration_seconds',
  help: 'Duration of one DB writer transaction.',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export const writerEvents = new client.Counter({
  name: 'flashsale_writer_events_total',
  help: 'Events seen by the DB writer, by result (applied, duplicate, gap, conflict, unreadable).',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const writerRestarts = new client.Counter({
  name: 'flashsale_writer_consumer_restarts_total',
  help: 'Kafka consumer crashes kafkajs would not restart, restarted by the DB writer.',
  registers: [registry],
});

export const reconcilePasses = new client.Counter({
  name: 'flashsale_reconcile_passes_total',
  help: 'Reconciliation passes by result (clean, findings).',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const openIncidents = new client.Gauge({
  name: 'flashsale_open_incidents',
  help: 'Open alert incidents, as of the last reconciliation pass.',
  registers: [registry],
});

export const webhookDeliveries = new client.Counter({
  name: 'flashsale_webhook_deliveries_total',
  help: 'Webhook delivery attempts by result (delivered, retry, failed, disabled).',
  labelNames: ['result'] as const,
  registers: [registry],
});

/**
 * A value read on demand, at most once per maxAgeMs, one read at a time: scrapes, however
 * frequent, cost the backing services one read per window. A failed read reports nothing
 * (not the last numbers) until the next one; so does a value older than three windows.
 */
export class Sampled<T> {
  private value: T | undefined;
  private at = 0;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs: number,
  ) {}

  /** wait: await a refresh that is due; otherwise answer at once with what is known. */
  async get(wait: boolean): Promise<T | undefined> {
    if (!this.pending && Date.now() - this.at >= this.maxAgeMs) {
      this.pending = this.read()
        .then(
          (v) => {
            this.value = v;
          },
          () => {
            this.value = undefined;
          },
        )
        .finally(() => {
          this.at = Date.now();
          this.pending = undefined;
        });
    }
    if (wait && this.pending) await this.pending;
    return Date.now() - this.at < 3 * this.maxAgeMs ? this.value : undefined;
  }
}

export interface PipelineSource {
  streamLengths(): Promise<Map<number, number>>;
  kafkaLag(): Promise<Map<number, number>>;
}

/** Where the scrape-time pipeline gauges read from; set by the process that serves /metrics. */
let pipelineSource:
  | { streamLengths: Sampled<Map<number, number>>; kafkaLag: Sampled<Map<number, number>> }
  | undefined;

/**
 * Stream lengths are read (one round trip) at most once a second and a scrape waits for
 * that read (bounded by the Redis command timeout); the Kafka lag is read in the
 * background at most every kafkaLagRefreshMs and a scrape never waits for it.
 */
export function setPipelineSource(
  source: PipelineSource | undefined,
  opts: { kafkaLagRefreshMs: number } = { kafkaLagRefreshMs: 5000 },
): void {
  pipelineSource = source && {
    streamLengths: new Sampled(() => source.streamLengths(), 1000),
    kafkaLag: new Sampled(() => source.kafkaLag(), opts.kafkaLagRefreshMs),
  };
}

export const streamLength = new client.Gauge({
  name: 'flashsale_stream_length',
  help: 'Entries waiting in each partition’s Redis stream (not yet relayed to Kafka).',
  labelNames: ['partition'] as const,
  registers: [registry],
  async collect() {
    const lengths = await pipelineSource?.streamLengths.get(true);
    this.reset();
    for (const [p, n] of lengths ?? []) this.set({ partition: String(p) }, n);
  },
});

export const consumerLag = new client.Gauge({
  name: 'flashsale_writer_consumer_lag',
  help: 'Kafka messages not yet applied by the DB writer, per partition (read every few seconds).',
  labelNames: ['partition'] as const,
  registers: [registry],
  async collect() {
    const lag = await pipelineSource?.kafkaLag.get(false);
    this.reset();
    for (const [p, n] of lag ?? []) this.set({ partition: String(p) }, n);
  },
});

// The waiting room (src/admission/).

export const queueJoins = new client.Counter({
  name: 'flashsale_queue_joins_total',
  help: 'Waiting-room joins by outcome (joined, rejoined, or the error code) and SKU (empty when the SKU is unknown or the request was refused before its SKU was consulted).',
  labelNames: ['outcome', 'sku'] as const,
  registers: [registry],
});

export const queueAdmitted = new client.Counter({
  name: 'flashsale_queue_admitted_total',
  help: 'Waiting-room tickets admitted, per SKU (counted by the process that admits: the sweeper role).',
  labelNames: ['sku'] as const,
  registers: [registry],
});

export const queueTicketsRestored = new client.Counter({
  name: 'flashsale_queue_tickets_restored_total',
  help: 'Waiting-room tickets put back in their place, per SKU, by their buyer’s poll after Redis lost the line with its data (each buyer once per loss).',
  labelNames: ['sku'] as const,
  registers: [registry],
});

/** Where the waiting gauge reads from; set by the process that serves /metrics. */
let queueSource: Sampled<Map<string, number>> | undefined;

/** Tickets waiting per SKU, read at most once a second whatever the scrape rate. */
export function setQueueSource(read: (() => Promise<Map<string, number>>) | undefined): void {
  queueSource = read && new Sampled(read, 1000);
}

export const queueWaiting = new client.Gauge({
  name: 'flashsale_queue_waiting',
  help: 'Tickets waiting in each SKU’s waiting room (the SKUs whose waiting room is on).',
  labelNames: ['sku'] as const,
  registers: [registry],
  async collect() {
    const waiting = await queueSource?.get(true);
    this.reset();
    for (const [sku, n] of waiting ?? []) this.set({ sku }, n);
  },
});
