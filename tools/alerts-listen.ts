// `npm run alerts:listen [-- --port 4000]`: a small webhook receiver that prints verified
// alerts and refuses (400) anything whose signature, timestamp or body does not check out.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../src/shared/config.js';
import { verifyWebhook, WebhookVerificationError } from '../src/alerts/signing.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4000' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
let secret: string;
try {
  secret = loadConfig().ALERT_WEBHOOK_SECRET;
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= 1_000_000) chunks.push(c);
  });
  req.on('end', () => {
    try {
      if (size > 1_000_000) throw new WebhookVerificationError('body too large');
      const alert = verifyWebhook(Buffer.concat(chunks), req.headers, secret) as {
        type: string;
        data: { sku: string; kind: string; redis: unknown; db: unknown };
      };
      console.log(
        `${new Date().toISOString()} ${req.headers['webhook-id']} ${alert.type} ${alert.data.kind} sku=${alert.data.sku} redis=${JSON.stringify(alert.data.redis)} db=${JSON.stringify(alert.data.db)}`,
      );
      res.writeHead(204).end();
    } catch (err) {
      const reason = err instanceof WebhookVerificationError ? err.message : 'unreadable';
      console.error(`${new Date().toISOString()} refused: ${reason}`);
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: reason }));
    }
  });
});
server.listen(Number(values.port), values.host, () =>
  console.log(`listening http://${values.host}:${values.port} for signed alerts`),
);
