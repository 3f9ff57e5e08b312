// Negative codes the Lua scripts return for refusals, and the one function that turns
// them into domain errors (bullmq's error-code enum is the model).
import { AppError } from '../errors.js';

export enum ScriptCode {
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
}

/** Seconds a client should wait before retrying while a SKU's state is rebuilt. */
export const REBUILD_RETRY_AFTER_S = 1;

export function scriptError(
  code: number,
  reply: unknown[],
  context: 'cancel' | 'confirm' | 'other' = 'other',
): AppError {
  switch (code) {
    case ScriptCode.SkuStateMissing:
    case ScriptCode.Paused:
      return new AppError('SKU_UNAVAILABLE', undefined, undefined, {
        'Retry-After': String(REBUILD_RETRY_AFTER_S),
      });
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
