// The stock event schema (version 1): written by the Lua scripts (lua/includes/appendEvent),
// carried by Kafka as JSON, validated by the DB writer when consumed.
import { z } from 'zod';
import { ID_PATTERN, ORDER_ID_PATTERN, IDEMPOTENCY_KEY_PATTERN } from '../shared/keys.js';
import { TRACEPARENT_PATTERN } from '../shared/tracing.js';

const ms = z.number().int().nonnegative();
const base = {
  v: z.literal(1),
  sku: z.string().regex(ID_PATTERN),
  /** The SKU's sequence after this event: 1, 2, 3, ... with no gaps. */
  seq: z.number().int().positive(),
  /** Signed change of available units. */
  delta: z.number().int(),
  stockAfter: z.number().int().nonnegative(),
  suppliedAfter: z.number().int().nonnegative(),
  /** Redis server time of the change, in ms. */
  at: ms,
  /** W3C traceparent of the span that wrote the event (tracing on, trace sampled). */
  traceparent: z.string().regex(TRACEPARENT_PATTERN).optional(),
};
const order = {
  orderId: z.string().regex(ORDER_ID_PATTERN),
  userId: z.string().regex(ID_PATTERN),
  quantity: z.number().int().positive(),
};

export const stockEvent = z.discriminatedUnion('type', [
  z.object({
    ...base,
    ...order,
    type: z.literal('order.reserved'),
    status: z.literal('reserved'),
    idempotencyKey: z.string().regex(IDEMPOTENCY_KEY_PATTERN),
    createdAt: ms,
    expiresAt: ms,
  }),
  z.object({
    ...base,
    ...order,
    type: z.literal('order.confirmed'),
    status: z.literal('confirmed'),
  }),
  z.object({
    ...base,
    ...order,
    type: z.literal('order.cancelled'),
    status: z.literal('cancelled'),
  }),
  z.object({ ...base, ...order, type: z.literal('order.expired'), status: z.literal('expired') }),
  z.object({
    ...base,
    type: z.literal('sku.restocked'),
    quantity: z.number().int().positive(),
    reason: z.string(),
  }),
  z.object({ ...base, type: z.literal('sku.paused') }),
  z.object({ ...base, type: z.literal('sku.resumed') }),
]);

export type StockEvent = z.infer<typeof stockEvent>;
export type OrderEvent = Extract<StockEvent, { orderId: string }>;

export function isOrderEvent(e: StockEvent): e is OrderEvent {
  return 'orderId' in e;
}

export type Parsed = { ok: true; event: StockEvent } | { ok: false; reason: string };

export function parseEvent(raw: Buffer | string | null): Parsed {
  if (raw === null) return { ok: false, reason: 'empty message' };
  let json: unknown;
  try {
    json = JSON.parse(raw.toString());
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const r = stockEvent.safeParse(json);
  if (!r.success)
    return {
      ok: false,
      reason: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    };
  return { ok: true, event: r.data };
}
