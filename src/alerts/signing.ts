// Standard Webhooks signing: webhook-id, webhook-timestamp and webhook-signature
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>") with a whsec_<base64> secret.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

function key(secret: string): Buffer {
  if (!secret.startsWith('whsec_')) throw new TypeError('webhook secrets look like whsec_<base64>');
  return Buffer.from(secret.slice('whsec_'.length), 'base64');
}

export function sign(secret: string, id: string, timestampS: number, body: string): string {
  return `v1,${createHmac('sha256', key(secret)).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

export function signedHeaders(
  secret: string,
  id: string,
  body: string,
  now = Date.now(),
): WebhookHeaders {
  const ts = Math.floor(now / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(ts),
    'webhook-signature': sign(secret, id, ts, body),
  };
}

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

export interface VerifyOptions {
  /** Seconds a timestamp may be off from now, either way (replay protection). */
  toleranceS?: number;
  now?: number;
}

/**
 * For receivers: checks a delivery and returns its parsed body, or throws
 * WebhookVerificationError. Accepts several secrets (key rotation) and a header with
 * several signatures; comparisons are constant-time.
 */
export function verifyWebhook(
  body: string | Buffer,
  headers: Record<string, string | string[] | undefined>,
  secrets: string | string[],
  opts: VerifyOptions = {},
): unknown {
  const one = (name: string) => {
    const v = headers[name] ?? headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = one('webhook-id');
  const timestamp = one('webhook-timestamp');
  const signatures = one('webhook-signature');
  if (!id || !timestamp || !signatures)
    throw new WebhookVerificationError('missing webhook headers');
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError('bad timestamp');
  const ts = Number(timestamp);
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  const tolerance = opts.toleranceS ?? 300;
  if (Math.abs(now - ts) > tolerance)
    throw new WebhookVerificationError('timestamp outside the tolerance');
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const offered = signatures
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const secret of Array.isArray(secrets) ? secrets : [secrets]) {
    const expected = Buffer.from(sign(secret, id, ts, text).slice(3), 'base64');
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new WebhookVerificationError('body is not JSON');
      }
    }
  }
  throw new WebhookVerificationError('no matching signature');
}
