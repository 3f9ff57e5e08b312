// The codes the Lua scripts answer with: Done and Unchanged for success, negative ones for
// refusals; the one decoder of the order layout the order scripts share; and the one
// function that turns refusals into domain errors (bullmq's error-code enum is the model).
import { AppError } from '../shared/errors.js';
import { iso, type Order, type OrderStatus } from './types.js';

export enum ScriptCode {
  /** The script changed what it was asked to change. */
  Done = 1,
  /** It was already so (a replay, a repeated cancel or confirm): nothing changed. */
  Unchanged = 2,
  SkuStateMissing = -1,
  SaleNotActive = -2,
  LimitExceeded = -3,
  SoldOut = -4,
  IdempotencyConflict = -5,
  Paused = -6,
  OrderNotFound = -7,
  NotReleasable = -8,
  NotDue = -9,
  OrderExpired = -10,
  NotConfirmable = -11,
  AlreadyLoaded = -12,
  WrongKeyType = -13,
  SupplyLimit = -14,
  ReplaceRefused = -15,
  /** The key's claim was restored to another order by a rebuild: replay that one. */
  ClaimRestored = -16,
  NotAdmitted = -17,
  NotQualified = -18,
  /** Over a rate limit: the ms to wait follows. */
  RateLimited = -19,
}

/**
 * Decodes the order layout of purchase, release and confirm:
 * {code, status, quantity, createdAt, expiresAt, user[, available]}.
 */
export function orderReply(
  reply: unknown[],
  orderId: string,
  sku: string,
): { code: ScriptCode.Done | ScriptCode.Unchanged; order: Order; available?: number } | undefined {
  const code = Number(reply[0]);
  if (code !== ScriptCode.Done && code !== ScriptCode.Unchanged) return undefined;
  return {
    code,
    order: {
      orderId,
      sku,
      userId: String(reply[5]),
      quantity: Number(reply[2]),
      status: String(reply[1]) as OrderStatus,
      createdAt: iso(Number(reply[3])),
      expiresAt: iso(Number(reply[4])),
    },
    ...(reply[6] !== undefined && reply[6] !== null ? { available: Number(reply[6]) } : {}),
  };
}

/** Seconds a client should wait before retrying while a SKU's state is rebuilt. */
export const REBUILD_RETRY_AFTER_S = 1;

/** 503 while a SKU is rebuilt or paused: the one place this answer is made. */
export function skuUnavailable(): AppError {
  return new AppError('SKU_UNAVAILABLE', undefined, undefined, {
    'Retry-After': String(REBUILD_RETRY_AFTER_S),
  });
}

export function scriptError(
  code: number,
  reply: unknown[],
  context: 'cancel' | 'confirm' | 'other' = 'other',
): AppError {
  switch (code) {
    case ScriptCode.SkuStateMissing:
    case ScriptCode.Paused:
      return skuUnavailable();
    case ScriptCode.SaleNotActive:
      return new AppError('SALE_NOT_ACTIVE');
    case ScriptCode.LimitExceeded:
      return new AppError('LIMIT_EXCEEDED', undefined, { held: Number(reply[1]) });
    case ScriptCode.SoldOut:
      return new AppError('SOLD_OUT', undefined, { available: Number(reply[1]) });
    case ScriptCode.IdempotencyConflict:
      return new AppError('IDEMPOTENCY_KEY_REUSED');
    case ScriptCode.OrderNotFound:
      return new AppError('ORDER_NOT_FOUND');
    case ScriptCode.NotReleasable:
      return context === 'cancel'
        ? new AppError(
            'ORDER_NOT_CANCELLABLE',
            `An order in status ${String(reply[1])} cannot be cancelled.`,
          )
        : new AppError('ORDER_NOT_CONFIRMABLE');
    case ScriptCode.OrderExpired:
      return new AppError('ORDER_EXPIRED');
    case ScriptCode.NotConfirmable:
      return new AppError(
        'ORDER_NOT_CONFIRMABLE',
        `An order in status ${String(reply[1])} cannot be confirmed.`,
      );
    case ScriptCode.NotAdmitted:
      return new AppError('NOT_ADMITTED');
    case ScriptCode.NotQualified:
      return new AppError('NOT_QUALIFIED');
    case ScriptCode.RateLimited: {
      const waitMs = Number(reply[1]);
      return new AppError(
        'RATE_LIMITED',
        undefined,
        { retryAfterMs: waitMs },
        {
          'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))),
        },
      );
    }
    case ScriptCode.SupplyLimit:
      return new AppError('SUPPLY_LIMIT_EXCEEDED', undefined, { supplied: Number(reply[1]) });
    case ScriptCode.WrongKeyType:
      // Internal: never shown to clients (the error middleware logs it and answers 500).
      return new AppError(
        'INTERNAL',
        `key ${String(reply[1])} holds the wrong type; nothing was written`,
      );
    default:
      return new AppError('INTERNAL', `unexpected script reply ${code}`);
  }
}
