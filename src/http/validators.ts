// Request schemas (zod). Limits here are the API's; the SKU's own per-user limit is
// enforced by the purchase script.
import { z } from 'zod';
import { AppError } from '../shared/errors.js';
import { ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, ORDER_ID_PATTERN } from '../shared/keys.js';

export const MAX_QUANTITY = 1000;
export const MAX_STOCK = 10_000_000;
/**
 * Text an operator types: no control characters (PostgreSQL refuses NUL outright) and no
 * lone surrogates (not valid UTF-8), so whatever the API accepts every store can hold.
 */
const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine(
      (s) => !/[\p{Cc}\p{Cs}]/u.test(s),
      'control characters and lone surrogates are not allowed',
    );

export const purchaseBody = z.strictObject({
  quantity: z.number().int().min(1).max(MAX_QUANTITY),
});

/** A SKU's waiting room: present means on; at least one pace. */
export const waitingRoomSettings = z
  .strictObject({
    /** The admitter runs 10 passes a second of at most 1,000 tickets a SKU. */
    admissionsPerSecond: z.number().positive().max(10_000).optional(),
    admissionsPerUnitLeft: z.number().positive().max(1000).optional(),
    admissionTtlSeconds: z.number().int().min(1).max(86_400).optional(),
  })
  .refine(
    (w) => w.admissionsPerSecond !== undefined || w.admissionsPerUnitLeft !== undefined,
    'give admissionsPerSecond, admissionsPerUnitLeft or both',
  );

const ratePerSecond = z
  .number()
  .max(100_000)
  .refine((r) => r === 0 || r >= 0.001, 'must be 0 (no limit) or at least 0.001');
const burst = z.number().int().min(1).max(100_000);

/**
 * The SKU's own limits per buyer and per client address (purchases, queue joins and polls),
 * each a rate with its burst; an absent pair is the deployment's, a rate of 0 lifts it.
 */
export const skuRateLimitSettings = z
  .strictObject({
    buyerPerSecond: ratePerSecond.optional(),
    buyerBurst: burst.optional(),
    clientPerSecond: ratePerSecond.optional(),
    clientBurst: burst.optional(),
  })
  .refine((r) => (r.buyerPerSecond === undefined) === (r.buyerBurst === undefined), {
    message: 'give buyerPerSecond and buyerBurst together',
    path: ['buyerBurst'],
  })
  .refine((r) => (r.clientPerSecond === undefined) === (r.clientBurst === undefined), {
    message: 'give clientPerSecond and clientBurst together',
    path: ['clientBurst'],
  })
  .refine((r) => r.buyerPerSecond !== undefined || r.clientPerSecond !== undefined, {
    message: "give a buyer limit, a client limit or both (null: the deployment's)",
  });

const admissionFields = {
  waitingRoom: waitingRoomSettings.nullable().optional(),
  qualificationRequired: z.boolean().optional(),
  rateLimit: skuRateLimitSettings.nullable().optional(),
};

/** PUT /v1/admin/skus/{sku}/admission: all of a SKU's admission settings at once. */
export const admissionBody = z.strictObject(admissionFields);

export const createSkuBody = z
  .strictObject({
    sku: z.string().regex(ID_PATTERN, 'letters, digits, _ or -, 1-64 characters'),
    name: text(200),
    stock: z.number().int().min(0).max(MAX_STOCK),
    perUserLimit: z.number().int().min(1).max(MAX_QUANTITY),
    startsAt: z.iso.datetime({ offset: true }).optional(),
    endsAt: z.iso.datetime({ offset: true }).optional(),
    reservationTtlSeconds: z.number().int().min(1).max(604800).optional(),
    ...admissionFields,
  })
  .refine((b) => !b.startsAt || !b.endsAt || Date.parse(b.startsAt) < Date.parse(b.endsAt), {
    message: 'startsAt must be before endsAt',
    path: ['endsAt'],
  });

export const restockBody = z.strictObject({
  quantity: z.number().int().min(1).max(MAX_STOCK),
  reason: text(200),
});

export function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new AppError('VALIDATION_FAILED', undefined, {
    issues: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}

export function skuParam(value: string | undefined): string {
  if (value === undefined || !ID_PATTERN.test(value)) {
    throw new AppError(
      'VALIDATION_FAILED',
      'The SKU id must be 1-64 characters of A-Z a-z 0-9 _ -.',
    );
  }
  return value;
}

export function orderParam(value: string | undefined): string {
  if (value === undefined || !ORDER_ID_PATTERN.test(value)) {
    throw new AppError('VALIDATION_FAILED', 'The order id must be a lowercase UUIDv7.');
  }
  return value;
}

export function idempotencyKey(value: string | string[] | undefined): string {
  if (value === undefined || value === '') throw new AppError('IDEMPOTENCY_KEY_REQUIRED');
  if (typeof value !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(value))
    throw new AppError('IDEMPOTENCY_KEY_INVALID');
  return value;
}
