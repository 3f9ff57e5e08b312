// Reads a JSON body with a hard size limit. One reader for every route: no express.json
// (a third of the purchase path's time when profiled), and the same error codes everywhere.
import type { IncomingMessage } from 'node:http';
import { AppError } from '../shared/errors.js';

export async function readJson(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (!type || !/^application\/json\s*(;|$)/i.test(type)) {
    req.resume();
    throw new AppError('UNSUPPORTED_MEDIA_TYPE');
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limitBytes) {
    req.resume();
    throw new AppError('PAYLOAD_TOO_LARGE', `The body must be at most ${limitBytes} bytes.`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) {
      req.resume();
      throw new AppError('PAYLOAD_TOO_LARGE', `The body must be at most ${limitBytes} bytes.`);
    }
    chunks.push(chunk);
  }
  const text =
    chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AppError('MALFORMED_JSON');
  }
}
