// The one list of error codes: HTTP status, default message and whether a client may
// retry. The error middleware, the OpenAPI document and the README table all read it.

export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, retryable: false, message: 'The request is not valid.' },
  MALFORMED_JSON: { status: 400, retryable: false, message: 'The body is not valid JSON.' },
  IDEMPOTENCY_KEY_REQUIRED: {
    status: 400,
    retryable: false,
    message: 'The Idempotency-Key header is required.',
  },
  IDEMPOTENCY_KEY_INVALID: {
    status: 400,
    retryable: false,
    message: 'The Idempotency-Key header must be 1-128 characters of A-Z a-z 0-9 _ . : -.',
  },
  UNAUTHORIZED: { status: 401, retryable: false, message: 'Missing or invalid credentials.' },
  FORBIDDEN: {
    status: 403,
    retryable: false,
    message: 'These credentials do not allow this request.',
  },
  NOT_FOUND: { status: 404, retryable: false, message: 'No such route.' },
  SKU_NOT_FOUND: { status: 404, retryable: false, message: 'No such SKU.' },
  ORDER_NOT_FOUND: { status: 404, retryable: false, message: 'No such order.' },
  METHOD_NOT_ALLOWED: {
    status: 405,
    retryable: false,
    message: 'This method is not allowed on this route.',
  },
  SOLD_OUT: { status: 409, retryable: false, message: 'Not enough units left.' },
  LIMIT_EXCEEDED: {
    status: 409,
    retryable: false,
    message: 'This purchase would exceed the per-user limit.',
  },
  SALE_NOT_ACTIVE: { status: 409, retryable: false, message: 'The sale is not open.' },
  SKU_EXISTS: { status: 409, retryable: false, message: 'A SKU with this id exists.' },
  SUPPLY_LIMIT_EXCEEDED: {
    status: 409,
    retryable: false,
    message: 'This restock would take the SKU past the most units it may ever be supplied.',
  },
  ORDER_NOT_CANCELLABLE: {
    status: 409,
    retryable: false,
    message: 'This order can no longer be cancelled.',
  },
  ORDER_EXPIRED: { status: 409, retryable: false, message: 'The reservation expired.' },
  REPAIR_DISABLED: {
    status: 409,
    retryable: false,
    message: 'Repair is disabled (REPAIR_ENABLED=false).',
  },
  REPAIR_FAILED: {
    status: 503,
    retryable: true,
    message: 'The SKU could not be repaired now; nothing was rebuilt. Try again shortly.',
  },
  ORDER_NOT_CONFIRMABLE: {
    status: 409,
    retryable: false,
    message: 'This order cannot be confirmed.',
  },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, message: 'The body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    retryable: false,
    message: 'The body must be application/json.',
  },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    retryable: false,
    message: 'This Idempotency-Key was used with a different request.',
  },
  NOT_ADMITTED: {
    status: 403,
    retryable: false,
    message:
      'This SKU sells through its waiting room: send the Admission-Token of an admitted ticket.',
  },
  NOT_QUALIFIED: {
    status: 403,
    retryable: false,
    message: "This SKU requires the Qualification-Token the seller's own system issues.",
  },
  QUEUE_NOT_ENABLED: { status: 409, retryable: false, message: 'This SKU has no waiting room.' },
  QUEUE_CLOSED: {
    status: 409,
    retryable: false,
    message: 'The waiting room is closed: the SKU sold out or its sale ended.',
  },
  TICKET_NOT_FOUND: { status: 404, retryable: false, message: 'No such waiting-room ticket.' },
  RATE_LIMITED: {
    status: 429,
    retryable: true,
    message: 'Too many requests; retry after the time Retry-After gives.',
  },
  INTERNAL: { status: 500, retryable: true, message: 'Internal error.' },
  SKU_UNAVAILABLE: {
    status: 503,
    retryable: true,
    message: 'This SKU is being restored; try again shortly.',
  },
  SERVICE_UNAVAILABLE: {
    status: 503,
    retryable: true,
    message: 'A backing service is unavailable; try again shortly.',
  },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly status: number;
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? ERROR_CODES[code].message);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
  }

  toBody(): {
    error: {
      code: ErrorCode;
      message: string;
      retryable: boolean;
      details?: Record<string, unknown>;
    };
  } {
    return {
      error: {
        code: this.code,
        message: this.message,
        retryable: this.retryable,
        ...(this.details ? { details: this.details } : {}),
      },
    };
  }
}
