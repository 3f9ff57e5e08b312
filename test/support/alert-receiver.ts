// A webhook receiver for alert tests: a real HTTP server that verifies every delivery's
// Standard Webhooks signature and keeps what it accepted.
import { createServer, type Server } from 'node:http';
import { verifyWebhook } from '../../src/alerts/signing.js';

export interface Received {
  id: string;
  type: string;
  data: {
    /** The incident's id. */
    id: string;
    sku: string;
    kind: string;
    redis: { available: number | null; sequence: number | null };
    db: { available: number | null; sequence: number | null };
  };
  at: number;
}

/** A real receiver: verifies every delivery; `failNext` answers 500 that many times first. */
export async function alertReceiver(secret: string) {
  const got: Received[] = [];
  const attempts: string[] = [];
  let failNext = 0;
  let status = 204;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      attempts.push(String(req.headers['webhook-id']));
      if (failNext > 0) {
        failNext -= 1;
        res.writeHead(500).end();
        return;
      }
      try {
        const body = verifyWebhook(Buffer.concat(chunks), req.headers, secret) as Omit<
          Received,
          'id' | 'at'
        >;
        got.push({ ...body, id: String(req.headers['webhook-id']), at: Date.now() });
        res.writeHead(status).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${a.port}/alerts`,
    got,
    attempts,
    failTimes(n: number) {
      failNext = n;
    },
    answer(s: number) {
      status = s;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export type AlertReceiver = Awaited<ReturnType<typeof alertReceiver>>;
