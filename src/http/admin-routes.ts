// Admin routes of reconciliation and alerts: the live comparison of a SKU, an on-demand
// pass, the incidents, and repair (off unless REPAIR_ENABLED).
import type { IncidentStore } from '../alerts/incidents.js';
import { AppError } from '../shared/errors.js';
import { readJson } from './body.js';
import { sendJson } from './respond.js';
import type { RouteSpec } from './routes.js';
import { skuParam } from './validators.js';
import type { Inventory } from '../inventory/inventory.js';
import type { Reconciler } from '../reconcile/reconciler.js';

export interface ReconcileRouteDeps {
  reconciler: Reconciler;
  incidents: IncidentStore;
  inventory: Inventory;
  repairEnabled: boolean;
  adminBodyLimitBytes: number;
}

export function reconcileRoutes(d: ReconcileRouteDeps): RouteSpec[] {
  return [
    {
      method: 'get',
      path: '/v1/admin/skus/{sku}/reconciliation',
      summary: 'Redis vs PostgreSQL for one SKU now: stock and sequence on both sides, lag, drift.',
      auth: 'admin',
      success: 200,
      errors: ['UNAUTHORIZED', 'FORBIDDEN', 'VALIDATION_FAILED', 'SKU_NOT_FOUND'],
      handler: async (req, res) => {
        const c = await d.reconciler.inspect(skuParam(req.params.sku as string));
        if (!c) throw new AppError('SKU_NOT_FOUND');
        sendJson(res, 200, c);
      },
    },
    {
      method: 'post',
      path: '/v1/admin/reconcile',
      summary: 'Run a reconciliation pass now; incidents are written when this instance can lead.',
      auth: 'admin',
      success: 200,
      errors: ['UNAUTHORIZED', 'FORBIDDEN'],
      handler: async (_req, res) => {
        sendJson(res, 200, await d.reconciler.pass());
      },
    },
    {
      method: 'get',
      path: '/v1/admin/alerts',
      summary: 'Open incidents and the most recently resolved ones.',
      auth: 'admin',
      success: 200,
      errors: ['UNAUTHORIZED', 'FORBIDDEN'],
      handler: async (_req, res) => {
        sendJson(res, 200, await d.incidents.list());
      },
    },
    {
      method: 'post',
      path: '/v1/admin/skus/{sku}/repair',
      summary:
        "Pause a SKU's sales, rebuild its Redis state from PostgreSQL, resume (REPAIR_ENABLED only).",
      auth: 'admin',
      success: 200,
      errors: [
        'UNAUTHORIZED',
        'FORBIDDEN',
        'VALIDATION_FAILED',
        'SKU_NOT_FOUND',
        'SKU_UNAVAILABLE',
        'REPAIR_DISABLED',
        'REPAIR_FAILED',
      ],
      handler: async (req, res) => {
        const sku = skuParam(req.params.sku as string);
        if (!d.repairEnabled) throw new AppError('REPAIR_DISABLED');
        if (req.headers['content-length'] && req.headers['content-length'] !== '0')
          await readJson(req, d.adminBodyLimitBytes);
        sendJson(res, 200, { sku, ...(await d.inventory.repair(sku)) });
      },
    },
  ];
}
