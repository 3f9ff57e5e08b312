// Prometheus metrics (prom-client), one registry per process.
import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

export const purchases = new client.Counter({
  name: 'flashsale_purchases_total',
  help: 'Purchase requests by outcome (created, replayed, or the error code).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const purchaseLatency = new client.Histogram({
  name: 'flashsale_purchase_duration_seconds',
  help: 'Purchase request latency, from first byte to answer.',
  buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
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

/** Where the scrape-time pipeline gauges read from; set by the process that serves /metrics. */
let pipelineSource:
  | { streamLengths(): Promise<Map<number, number>>; kafkaLag(): Promise<Map<number, number>> }
  | undefined;
export function setPipelineSource(source: typeof pipelineSource): void {
  pipelineSource = source;
}

export const streamLength = new client.Gauge({
  name: 'flashsale_stream_length',
  help: 'Entries waiting in each partition’s Redis stream (not yet relayed to Kafka).',
  labelNames: ['partition'] as const,
  registers: [registry],
  async collect() {
    const lengths = await pipelineSource?.streamLengths().catch(() => undefined);
    for (const [p, n] of lengths ?? []) this.set({ partition: String(p) }, n);
  },
});

export const consumerLag = new client.Gauge({
  name: 'flashsale_writer_consumer_lag',
  help: 'Kafka messages not yet applied by the DB writer, per partition.',
  labelNames: ['partition'] as const,
  registers: [registry],
  async collect() {
    const lag = await pipelineSource?.kafkaLag().catch(() => undefined);
    for (const [p, n] of lag ?? []) this.set({ partition: String(p) }, n);
  },
});
