// Per-SKU gauges read at scrape time from the live view (the SKUs it shows by default, the
// most recently created), so a scrape costs the stores at most one read per half second.
import client from 'prom-client';
import { registry } from '../shared/metrics.js';
import type { LiveSku, LiveView } from './snapshot.js';

/** Where the gauges read from; set by the process that serves /metrics. */
let source: LiveView | undefined;

export function setLiveGaugeSource(view: LiveView | undefined): void {
  source = view;
}

function skuGauge(name: string, help: string, value: (s: LiveSku) => number | null) {
  return new client.Gauge({
    name,
    help,
    labelNames: ['sku'] as const,
    registers: [registry],
    async collect() {
      const skus = await source?.gaugeSkus();
      this.reset();
      for (const s of skus ?? []) {
        const v = value(s);
        if (v !== null) this.set({ sku: s.sku }, v);
      }
    },
  });
}

export const skuAvailable = skuGauge(
  'flashsale_sku_available',
  'Units left to sell per SKU, in Redis (the most recently created SKUs).',
  (s) => s.available,
);

export const skuSupplied = skuGauge(
  'flashsale_sku_supplied',
  'Units ever supplied per SKU (initial stock plus restocks), in Redis.',
  (s) => s.supplied,
);

export const reservationsExpiring = skuGauge(
  'flashsale_reservations_expiring',
  'Reservations per SKU due to expire within 60 s (or due and not yet swept).',
  (s) => s.expiringNext60s,
);
