// Writing JSON answers and errors on a bare node:http response, so the lean purchase
// path and the express routes answer byte-for-byte alike.
import type { ServerResponse } from 'node:http';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

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

/** Known errors answer their code; anything else is a 500 without internals, logged. */
export function sendError(
  res: ServerResponse,
  err: unknown,
  log: Logger,
  requestId?: string,
): AppError {
  let appError: AppError;
  if (err instanceof AppError && err.code !== 'INTERNAL') {
    appError = err;
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
