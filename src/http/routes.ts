// The REST routes as one table: express registers them and the OpenAPI document is built
// from the same entries, so the two cannot drift apart.
import type { Request, Response } from 'express';
import type { z } from 'zod';
import { AppError, type ErrorCode } from '../shared/errors.js';
import type { Inventory } from '../inventory/inventory.js';
import { admissionFromRow } from '../inventory/admission-fields.js';
import { buyerOf, type Auth, type Principal } from './auth.js';
import { readJson } from './body.js';
import { PURCHASE_AUTH, type PurchaseHandler } from './purchase.js';
import { sendJson } from './respond.js';
import {
  createSkuBody,
  orderParam,
  parse,
  purchaseBody,
  restockBody,
  skuParam,
} from './validators.js';

export interface RouteSpec {
  method: 'get' | 'post' | 'put';
  /** OpenAPI style: /v1/skus/{sku} */
  path: string;
  summary: string;
  auth: Auth;
  success: number;
  /** Error codes this route answers beyond the ones every route can. */
  errors: ErrorCode[];
  body?: z.ZodType;
  headers?: { name: string; required: boolean; description: string }[];
  /** Optional query parameters (strings). */
  query?: { name: string; description: string }[];
  /** Media type of the success answer when it is not JSON. */
  produces?: 'text/html' | 'text/event-stream';
  /** Runs once the app has checked `auth`; `principal` is who the credentials name. */
  handler: (req: Request, res: Response, principal: Principal | undefined) => Promise<void> | void;
}

/** Answers any route may give, whatever it does. */
export const COMMON_ERRORS: ErrorCode[] = [
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'INTERNAL',
  'SERVICE_UNAVAILABLE',
];
const AUTH_ERRORS: ErrorCode[] = ['UNAUTHORIZED', 'FORBIDDEN'];
const BODY_ERRORS: ErrorCode[] = [
  'VALIDATION_FAILED',
  'MALFORMED_JSON',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
];

export interface RouteDeps {
  inventory: Inventory;
  purchase: PurchaseHandler;
  adminBodyLimitBytes: number;
  /** Extra routes from other parts of the engine (reconciliation, alerts). */
  extra?: RouteSpec[];
}

export function buildRoutes({
  inventory,
  purchase,
  adminBodyLimitBytes,
  extra = [],
}: RouteDeps): RouteSpec[] {
  return [
    {
      method: 'post',
      path: '/v1/skus/{sku}/purchases',
      summary:
        'Buy units of a SKU. Retries with the same Idempotency-Key replay the original order.',
      auth: PURCHASE_AUTH,
      success: 201,
      errors: [
        ...AUTH_ERRORS,
        ...BODY_ERRORS,
        'IDEMPOTENCY_KEY_REQUIRED',
        'IDEMPOTENCY_KEY_INVALID',
        'SKU_NOT_FOUND',
        'SOLD_OUT',
        'LIMIT_EXCEEDED',
        'SALE_NOT_ACTIVE',
        'IDEMPOTENCY_KEY_REUSED',
        'NOT_ADMITTED',
        'NOT_QUALIFIED',
        'RATE_LIMITED',
        'SKU_UNAVAILABLE',
      ],
      body: purchaseBody,
      headers: [
        {
          name: 'Idempotency-Key',
          required: true,
          description:
            '1-128 characters of A-Z a-z 0-9 _ . : -; unique per purchase attempt, reused on retry.',
        },
        {
          name: 'Admission-Token',
          required: false,
          description:
            "For a SKU with a waiting room: the token of the buyer's admitted ticket for this SKU.",
        },
        {
          name: 'Qualification-Token',
          required: false,
          description:
            "For a SKU that requires qualification: the token the seller's own system issued to this buyer for this SKU.",
        },
      ],
      handler: (req, res, principal) =>
        purchase(req, res, req.params.sku as string | undefined, buyerOf(principal)),
    },
    {
      method: 'get',
      path: '/v1/skus/{sku}',
      summary: 'Public stock view of a SKU.',
      auth: 'none',
      success: 200,
      errors: ['VALIDATION_FAILED', 'SKU_NOT_FOUND', 'SKU_UNAVAILABLE'],
      handler: async (req, res) => {
        sendJson(res, 200, await inventory.getSku(skuParam(req.params.sku as string)));
      },
    },
    {
      method: 'get',
      path: '/v1/orders/{id}',
      summary: 'Read an order (its owner, or the admin).',
      auth: 'buyer-or-admin',
      success: 200,
      errors: [...AUTH_ERRORS, 'VALIDATION_FAILED', 'ORDER_NOT_FOUND'],
      handler: async (req, res, principal) => {
        const id = orderParam(req.params.id as string);
        sendJson(res, 200, await inventory.getOrder(buyerOf(principal), id));
      },
    },
    {
      method: 'post',
      path: '/v1/orders/{id}/cancel',
      summary: 'The owner cancels a reserved or confirmed order; its units go back. Idempotent.',
      auth: 'buyer',
      success: 200,
      errors: [
        ...AUTH_ERRORS,
        'VALIDATION_FAILED',
        'ORDER_NOT_FOUND',
        'ORDER_NOT_CANCELLABLE',
        'SKU_UNAVAILABLE',
      ],
      handler: async (req, res, principal) => {
        const id = orderParam(req.params.id as string);
        sendJson(res, 200, await inventory.cancel(buyerOf(principal)!, id));
      },
    },
    {
      method: 'post',
      path: '/v1/orders/{id}/confirm',
      summary: 'Payment confirmed (the owner, or the admin for a payment service). Idempotent.',
      auth: 'buyer-or-admin',
      success: 200,
      errors: [
        ...AUTH_ERRORS,
        'VALIDATION_FAILED',
        'ORDER_NOT_FOUND',
        'ORDER_EXPIRED',
        'ORDER_NOT_CONFIRMABLE',
        'SKU_UNAVAILABLE',
      ],
      handler: async (req, res, principal) => {
        const id = orderParam(req.params.id as string);
        sendJson(res, 200, await inventory.confirm(buyerOf(principal), id));
      },
    },
    {
      method: 'post',
      path: '/v1/admin/skus',
      summary:
        'Create a SKU: written to PostgreSQL, then loaded into Redis. The same definition sent again (after a 503, say) answers 201 with Idempotent-Replayed: true.',
      auth: 'admin',
      success: 201,
      errors: [...AUTH_ERRORS, ...BODY_ERRORS, 'SKU_EXISTS'],
      body: createSkuBody,
      handler: async (req, res) => {
        const { waitingRoom, qualificationRequired, rateLimit, ...b } = parse(
          createSkuBody,
          await readJson(req, adminBodyLimitBytes),
        );
        const { row, replayed } = await inventory.createSku({
          ...b,
          startsAt: b.startsAt ? new Date(b.startsAt) : undefined,
          endsAt: b.endsAt ? new Date(b.endsAt) : undefined,
          admission: { waitingRoom, qualificationRequired, rateLimit },
        });
        const body = {
          sku: row.id,
          name: row.name,
          stock: row.totalSupplied,
          available: row.available,
          perUserLimit: row.perUserLimit,
          startsAt: row.startsAt?.toISOString() ?? null,
          endsAt: row.endsAt?.toISOString() ?? null,
          reservationTtlSeconds: row.reservationTtlSeconds,
          ...admissionFromRow(row),
        };
        sendJson(res, 201, body, replayed ? { 'Idempotent-Replayed': 'true' } : undefined);
      },
    },
    {
      method: 'post',
      path: '/v1/admin/skus/{sku}/restock',
      summary: 'Add units to a SKU.',
      auth: 'admin',
      success: 200,
      errors: [
        ...AUTH_ERRORS,
        ...BODY_ERRORS,
        'SKU_NOT_FOUND',
        'SKU_UNAVAILABLE',
        'SUPPLY_LIMIT_EXCEEDED',
      ],
      body: restockBody,
      handler: async (req, res) => {
        const skuId = skuParam(req.params.sku as string);
        const b = parse(restockBody, await readJson(req, adminBodyLimitBytes));
        sendJson(res, 200, await inventory.restock(skuId, b.quantity, b.reason));
      },
    },
    ...(['pause', 'resume'] as const).map((action): RouteSpec => ({
      method: 'post',
      path: `/v1/admin/skus/{sku}/${action}`,
      summary:
        action === 'pause'
          ? "Pause a SKU's sales: purchases, cancels, confirmations, expiries and restocks wait (503) until it resumes."
          : "Resume a paused SKU's sales.",
      auth: 'admin',
      success: 200,
      errors: [...AUTH_ERRORS, 'VALIDATION_FAILED', 'SKU_NOT_FOUND', 'SKU_UNAVAILABLE'],
      handler: async (req, res) => {
        const skuId = skuParam(req.params.sku as string);
        const changed = await inventory.setPaused(skuId, action === 'pause');
        sendJson(res, 200, { sku: skuId, paused: action === 'pause', changed });
      },
    })),
    ...extra,
  ];
}

/** Express wants /v1/skus/:sku where OpenAPI writes /v1/skus/{sku}. */
export function expressPath(path: string): string {
  return path.replace(/\{([A-Za-z]+)\}/g, ':$1');
}

export function notFound(): never {
  throw new AppError('NOT_FOUND');
}
