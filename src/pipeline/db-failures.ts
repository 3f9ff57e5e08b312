// Which PostgreSQL failures are the event's fault (permanent: retrying the same event can
// only fail again) and which are the moment's (transient: retry with backoff, never park).
import { Prisma } from '../clients/db.js';
import { storableText } from '../shared/storable.js';

/**
 * SQLSTATE classes an event's content can cause: 22 data exception (a NUL in jsonb, a
 * number out of range), 23 integrity constraint violation, 54 program limit exceeded.
 * Everything else (connection, serialization, deadlock, lock timeout, shutdown, a
 * missing table or column from an unmigrated database) is the moment's, not the event's.
 */
const PERMANENT_CLASSES = new Set(['22', '23', '54']);

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The PostgreSQL error code (SQLSTATE) behind an error, through Prisma's wrappers. */
export function sqlState(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const o = e as {
      code?: unknown;
      originalCode?: unknown;
      meta?: { driverAdapterError?: { cause?: { originalCode?: unknown; code?: unknown } } };
      cause?: unknown;
    };
    const cause = o.meta?.driverAdapterError?.cause;
    for (const c of [cause?.originalCode, cause?.code, o.originalCode, o.code])
      if (typeof c === 'string' && SQLSTATE.test(c)) return c;
    e = o.cause;
  }
  return undefined;
}

/** Whether retrying the same statement with the same event can never succeed. */
export function isPermanent(err: unknown): boolean {
  // Prisma refused the arguments before sending them: deterministic for this input.
  if (err instanceof Prisma.PrismaClientValidationError) return true;
  const code = sqlState(err);
  return code !== undefined && PERMANENT_CLASSES.has(code.slice(0, 2));
}

/** One line for an anomaly's reason: the SQLSTATE and PostgreSQL's own message. */
export function describeFailure(err: unknown): string {
  const code = sqlState(err) ?? 'no SQLSTATE';
  const o = err as {
    meta?: {
      driverAdapterError?: {
        cause?: { originalMessage?: unknown; message?: unknown; detail?: unknown };
      };
    };
    message?: unknown;
  };
  const cause = o.meta?.driverAdapterError?.cause;
  const message =
    typeof cause?.originalMessage === 'string'
      ? cause.originalMessage
      : typeof cause?.message === 'string'
        ? cause.message
        : String(o.message ?? err);
  const detail = typeof cause?.detail === 'string' ? ` (${cause.detail})` : '';
  return storableText(`${code}: ${message.trim()}${detail}`);
}
