// Webhook dispatcher: sends the delivery queue kept in PostgreSQL. At least once: a row
// is marked delivered only after a 2xx; anything else is retried with exponential backoff
// and full jitter until WEBHOOK_MAX_AGE_MS, with the same webhook-id every time. A 410
// disables that endpoint. Rows are claimed with FOR UPDATE SKIP LOCKED, so several
// dispatchers can run, and a restart loses nothing.
import type { Db } from '../clients/db.js';
import type { Logger } from '../shared/log.js';
import { webhookDeliveries } from '../shared/metrics.js';
import { PeriodicTask } from '../shared/periodic.js';
import { signedHeaders } from './signing.js';

export interface DispatcherOptions {
  secret: string;
  timeoutMs: number;
  maxAgeMs: number;
  pollMs: number;
  batchSize?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Due {
  id: bigint;
  message_id: string;
  endpoint_url: string;
  payload: string;
  attempts: number;
  created_at: Date;
}

export class WebhookDispatcher {
  private readonly task = new PeriodicTask(
    () => this.sendDue(),
    // More may be waiting: go again at once after a full batch.
    (sent) => (sent === (this.opts.batchSize ?? 50) ? 0 : this.opts.pollMs),
    (err) => this.log.error({ err }, 'webhook dispatch failed'),
  );

  constructor(
    private readonly db: Db,
    private readonly opts: DispatcherOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.task.start();
  }

  async stop(): Promise<void> {
    await this.task.stop();
  }

  /** Backoff before attempt n+1: exponential with full jitter, capped. */
  backoffMs(attempts: number): number {
    const base = this.opts.baseBackoffMs ?? 1000;
    const cap = this.opts.maxBackoffMs ?? 3_600_000;
    return Math.round(Math.random() * Math.min(cap, base * 2 ** Math.min(attempts, 30)));
  }

  /** Sends every due delivery once; returns how many were attempted. */
  async sendDue(): Promise<number> {
    return this.db.$transaction(
      async (tx) => {
        const due = await tx.$queryRaw<Due[]>`
          SELECT d.id, d.message_id, d.endpoint_url, d.payload, d.attempts, d.created_at
          FROM webhook_deliveries d JOIN webhook_endpoints e ON e.url = d.endpoint_url
          WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.disabled_at IS NULL
          ORDER BY d.id LIMIT ${this.opts.batchSize ?? 50}
          FOR UPDATE OF d SKIP LOCKED`;
        // Sent concurrently: one slow or dead endpoint must not hold the rest of the batch.
        const outcomes = await Promise.all(due.map((d) => this.attempt(d)));
        for (const [i, d] of due.entries()) {
          const outcome = outcomes[i]!;
          const attempts = d.attempts + 1;
          if (outcome.status !== undefined && outcome.status >= 200 && outcome.status < 300) {
            await tx.webhookDelivery.update({
              where: { id: d.id },
              data: {
                status: 'delivered',
                attempts,
                deliveredAt: new Date(),
                lastStatusCode: outcome.status,
                lastError: null,
              },
            });
            webhookDeliveries.inc({ result: 'delivered' });
          } else if (outcome.status === 410) {
            await tx.webhookEndpoint.update({
              where: { url: d.endpoint_url },
              data: { disabledAt: new Date(), reason: 'answered 410 Gone' },
            });
            await tx.webhookDelivery.update({
              where: { id: d.id },
              data: { status: 'disabled', attempts, lastStatusCode: 410 },
            });
            webhookDeliveries.inc({ result: 'disabled' });
            this.log.warn({ url: d.endpoint_url }, 'webhook endpoint answered 410: disabled');
          } else if (Date.now() - d.created_at.getTime() > this.opts.maxAgeMs) {
            await tx.webhookDelivery.update({
              where: { id: d.id },
              data: {
                status: 'failed',
                attempts,
                lastStatusCode: outcome.status ?? null,
                lastError: outcome.error ?? null,
              },
            });
            webhookDeliveries.inc({ result: 'failed' });
            this.log.error(
              { url: d.endpoint_url, messageId: d.message_id },
              'webhook delivery gave up (max age)',
            );
          } else {
            await tx.webhookDelivery.update({
              where: { id: d.id },
              data: {
                attempts,
                nextAttemptAt: new Date(Date.now() + this.backoffMs(attempts)),
                lastStatusCode: outcome.status ?? null,
                lastError: outcome.error ?? null,
              },
            });
            webhookDeliveries.inc({ result: 'retry' });
          }
        }
        return due.length;
      },
      { timeout: 120_000, maxWait: 10_000 },
    );
  }

  private async attempt(d: Due): Promise<{ status?: number; error?: string }> {
    try {
      const res = await fetch(d.endpoint_url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...signedHeaders(this.opts.secret, d.message_id, d.payload),
        },
        body: d.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      return { status: res.status };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }
}
