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
