// Writing JSON answers and errors on a bare node:http response, so the lean purchase
// path and the express routes answer byte-for-byte alike.
import type { ServerResponse } from 'node:http';
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  if (headers) for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.end(payload);
}

/** Seconds a client should wait before retrying while a backing service is unreachable. */
export const UNAVAILABLE_RETRY_AFTER_S = 1;

const REDIS_CLIENT_ERRORS =
  /^(Command timed out|Connection is closed|Stream isn't writeable|Cluster isn't ready|Reached the max retries per request|Failed to refresh slots cache)/;
// OOM: a Redis at its maxmemory (with noeviction) refuses writes until memory is freed.
const REDIS_REPLY_ERRORS = /^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|MISCONF|OOM)\b/;
const PG_CLIENT_ERRORS =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;
/** Prisma: cannot reach, timed out, server closed the connection, pool exhausted. */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const DRIVER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);
const KAFKA_NAMES =
  /^KafkaJS(ConnectionError|RequestTimeoutError|NumberOfRetriesExceeded|BrokerNotFound|ConnectionClosedError)$/;

/**
 * Which backing service an error says is unreachable (down, hung, refusing, loading), or
 * undefined when it is some other failure. The one place that knows these error shapes.
 */
export function unavailableService(
  err: unknown,
): 'redis' | 'postgres' | 'kafka' | 'network' | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & {
    code?: unknown;
    meta?: { driverAdapterError?: { cause?: { kind?: unknown } } };
  };
  if (e.name === 'MaxRetriesPerRequestError' || e.name === 'ClusterAllFailedError') return 'redis';
  if (REDIS_CLIENT_ERRORS.test(e.message) || REDIS_REPLY_ERRORS.test(e.message)) return 'redis';
  if (typeof e.code === 'string' && PRISMA_CODES.has(e.code)) return 'postgres';
  const kind = e.meta?.driverAdapterError?.cause?.kind;
  if (typeof kind === 'string' && DRIVER_KINDS.has(kind)) return 'postgres';
  if (PG_CLIENT_ERRORS.test(e.message)) return 'postgres';
  if (KAFKA_NAMES.test(e.name)) return 'kafka';
  if (typeof e.code === 'string' && SOCKET_CODES.has(e.code)) return 'network';
  return undefined;
}

/**
 * One warning per service and window while it stays unreachable (a flood of requests
 * during an outage must not become a flood of log lines), with how many were answered 503.
 */
const UNAVAILABLE_LOG_WINDOW_MS = 5000;
const unavailableLog = new Map<string, { until: number; suppressed: number }>();
function warnUnavailable(log: Logger, service: string, err: Error, requestId?: string): void {
  const now = Date.now();
  const entry = unavailableLog.get(service);
  if (entry && entry.until > now) {
    entry.suppressed += 1;
    return;
  }
  unavailableLog.set(service, { until: now + UNAVAILABLE_LOG_WINDOW_MS, suppressed: 0 });
  log.warn(
    { service, err: err.message, requestId, answered503Since: entry?.suppressed ?? 0 },
    'backing service unavailable: answering 503',
  );
}

/**
 * Known errors answer their code; a backing service that cannot be reached answers 503
 * SERVICE_UNAVAILABLE with Retry-After; anything else is a 500. Internals are logged, never
 * sent.
 */
export function sendError(
  res: ServerResponse,
  err: unknown,
  log: Logger,
  requestId?: string,
): AppError {
  let appError: AppError;
  const service = err instanceof AppError ? undefined : unavailableService(err);
  if (err instanceof AppError && err.code !== 'INTERNAL') {
    appError = err;
  } else if (service) {
    warnUnavailable(log, service, err as Error, requestId);
    appError = new AppError('SERVICE_UNAVAILABLE', undefined, undefined, {
      'Retry-After': String(UNAVAILABLE_RETRY_AFTER_S),
    });
  } else {
    // Unexpected: log the details, answer without them.
    appError = new AppError('INTERNAL');
    log.error({ err, requestId }, 'unexpected failure');
  }
  if (res.headersSent) {
    res.destroy();
    return appError;
  }
  sendJson(res, appError.status, appError.toBody(), appError.headers);
  return appError;
}
