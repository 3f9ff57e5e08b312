// The demo's flash sale through a waiting room (`npm run demo -- --waiting-room`): every
// buyer joins before the opening, polls as a client would (sooner when its estimate is
// short, at most every 10 s), buys with the Admission-Token once admitted (one in ten
// first tries without it, one in ten retries its purchase with the same key, one in twenty
// cancels), and stops when the queue says closed. Measures the admission rate and the
// waits from join (and from the opening) to admission, from the instants Redis recorded.
import { setTimeout as sleep } from 'node:timers/promises';

export interface QueuedSaleOptions {
  url: string;
  sku: string;
  /** Buyer tokens; buyer i is user `users[i]`. */
  jwts: string[];
  opensAt: number;
  admissionTtlSeconds: number;
  /** Requests in flight at most (a client fleet, not a flood). */
  concurrency: number;
  log: (line: string) => void;
}

export interface QueuedSaleResult {
  joined: number;
  joinedBeforeOpening: number;
  joinSeconds: number;
  admitted: number;
  /** Admission instants (server clock, ms), in order. */
  admissionInstants: number[];
  /** ms from each admitted buyer's join (and from the opening) to their admission. */
  waitsFromJoin: number[];
  waitsFromOpening: number[];
  polls: number;
  rateLimited: number;
  closed: number;
  /** Admitted buyers who first tried without their pass, and how many of them were refused. */
  attemptsWithoutPass: number;
  refusedWithoutPass: number;
  outcomes: Map<string, number>;
  accepted: { orderId: string; user: number }[];
  replayMismatch: string[];
  cancelled: number;
  durationS: number;
  /** Client-side latency (ms) of every request, by kind. */
  latencies: Record<RequestKind, number[]>;
  /** The requests sent in the sale's first second, by kind, with their latencies. */
  openingSecond: { sent: Record<RequestKind, number>; latencies: number[]; errors5xx: number };
}

export type RequestKind = 'join' | 'poll' | 'purchase' | 'cancel';

interface Ticket {
  ticket: string;
  status: 'waiting' | 'admitted' | 'closed' | 'expired';
  estimatedWaitSeconds: number | null;
  admissionToken?: string;
  admittedUntil?: string;
  error?: { code: string };
}

/** At most n calls at a time; the rest wait their turn. */
function limiter(n: number) {
  let running = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((r) => queue.push(r));
    running += 1;
    try {
      return await fn();
    } finally {
      running -= 1;
      queue.shift()?.();
    }
  };
}

export async function queuedSale(o: QueuedSaleOptions): Promise<QueuedSaleResult> {
  const limit = limiter(o.concurrency);
  const r: QueuedSaleResult = {
    joined: 0,
    joinedBeforeOpening: 0,
    joinSeconds: 0,
    admitted: 0,
    admissionInstants: [],
    waitsFromJoin: [],
    waitsFromOpening: [],
    polls: 0,
    rateLimited: 0,
    closed: 0,
    attemptsWithoutPass: 0,
    refusedWithoutPass: 0,
    outcomes: new Map(),
    accepted: [],
    replayMismatch: [],
    cancelled: 0,
    durationS: 0,
    latencies: { join: [], poll: [], purchase: [], cancel: [] },
    openingSecond: {
      sent: { join: 0, poll: 0, purchase: 0, cancel: 0 },
      latencies: [],
      errors5xx: 0,
    },
  };
  const count = (label: string) => r.outcomes.set(label, (r.outcomes.get(label) ?? 0) + 1);
  const request = async <T>(method: string, path: string, user: number, headers = {}) =>
    limit(async () => {
      const kind: RequestKind =
        method === 'GET'
          ? 'poll'
          : path.endsWith('/queue')
            ? 'join'
            : path.endsWith('/cancel')
              ? 'cancel'
              : 'purchase';
      const sentAt = Date.now();
      const res = await fetch(`${o.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${o.jwts[user]}`, ...headers },
        ...(kind === 'purchase'
          ? { body: JSON.stringify({ quantity: 1 + (user % 3 === 0 ? 1 : 0) }) }
          : {}),
      });
      const body = (await res.json()) as T;
      const ms = Date.now() - sentAt;
      r.latencies[kind].push(ms);
      if (sentAt >= o.opensAt && sentAt < o.opensAt + 1000) {
        r.openingSecond.sent[kind] += 1;
        r.openingSecond.latencies.push(ms);
        if (res.status >= 500) r.openingSecond.errors5xx += 1;
      }
      return { status: res.status, body };
    });

  // Every buyer joins, then polls on its own: joins before the opening when the machine
  // keeps up; with the opening at the start, the first seconds are the join storm and the
  // first polls together.
  const started = Date.now();
  const join = async (user: number) => {
    for (;;) {
      const at = Date.now();
      const j = await request<Ticket>('POST', `/v1/skus/${o.sku}/queue`, user);
      if (j.status === 202) {
        r.joined += 1;
        if (at < o.opensAt) r.joinedBeforeOpening += 1;
        if (r.joined === o.jwts.length) {
          r.joinSeconds = (Date.now() - started) / 1000;
          o.log(
            `${r.joined} joined in ${r.joinSeconds.toFixed(1)} s; the sale opens in ${Math.max(0, (o.opensAt - Date.now()) / 1000).toFixed(1)} s`,
          );
        }
        return { ...j.body, joinedAt: at };
      }
      if (j.status !== 429 && j.status !== 503) throw new Error(`join: ${j.status}`);
      await sleep(1000);
    }
  };

  let admittedSeen = 0;
  const progress = setInterval(
    () => o.log(`… ${admittedSeen} buyers admitted so far, ${r.closed} told the queue closed`),
    2000,
  );
  const buyer = async (user: number, t: Ticket & { joinedAt: number }) => {
    let next = t.estimatedWaitSeconds;
    let pass: string | undefined;
    for (;;) {
      // As a client would: poll about halfway to the estimate, at least 1 s and at most
      // 10 s apart.
      const delayS = Math.min(10, Math.max(1, (next ?? 2) / 2));
      await sleep(delayS * 1000 * (0.8 + Math.random() * 0.4));
      const v = await request<Ticket>('GET', `/v1/skus/${o.sku}/queue/${t.ticket}`, user);
      r.polls += 1;
      if (v.status === 429) {
        r.rateLimited += 1;
        continue;
      }
      if (v.status !== 200) throw new Error(`poll: ${v.status} ${JSON.stringify(v.body)}`);
      if (v.body.status === 'closed' || v.body.status === 'expired') {
        if (v.body.status === 'closed') r.closed += 1;
        return;
      }
      if (v.body.status === 'admitted') {
        pass = v.body.admissionToken;
        // The admission's instant on Redis's clock (the same machine's): its end less the TTL.
        const at = Date.parse(v.body.admittedUntil!) - o.admissionTtlSeconds * 1000;
        r.admissionInstants.push(at);
        r.waitsFromJoin.push(at - t.joinedAt);
        r.waitsFromOpening.push(at - o.opensAt);
        break;
      }
      next = v.body.estimatedWaitSeconds;
    }
    admittedSeen += 1;
    r.admitted += 1;
    const key = `${o.sku}-${user}`;
    if (user % 10 === 1) {
      r.attemptsWithoutPass += 1;
      const without = await request<Ticket>('POST', `/v1/skus/${o.sku}/purchases`, user, {
        'idempotency-key': `${key}-nopass`,
        'content-type': 'application/json',
      });
      // NOT_ADMITTED, or SOLD_OUT once an instance knows it sold out (it answers that
      // before asking Redis): refused either way, nothing bought.
      if (without.status !== 201) r.refusedWithoutPass += 1;
      count(`no pass: ${without.body.error?.code ?? without.status}`);
    }
    const buy = () =>
      request<{ orderId?: string; error?: { code: string } }>(
        'POST',
        `/v1/skus/${o.sku}/purchases`,
        user,
        {
          'idempotency-key': key,
          'content-type': 'application/json',
          ...(pass ? { 'admission-token': pass } : {}),
        },
      );
    const bought = await buy();
    count(bought.status === 201 ? 'created' : (bought.body.error?.code ?? String(bought.status)));
    if (bought.status !== 201 || !bought.body.orderId) return;
    r.accepted.push({ orderId: bought.body.orderId, user });
    if (user % 10 === 2) {
      const again = await buy();
      count(again.status === 201 ? 'replayed' : (again.body.error?.code ?? String(again.status)));
      if (again.body.orderId !== bought.body.orderId) r.replayMismatch.push(key);
    }
    // One buyer in 20 changes their mind: the units go back, and the line may reopen.
    if (r.accepted.length % 20 === 0) {
      const c = await request('POST', `/v1/orders/${bought.body.orderId}/cancel`, user);
      if (c.status === 200) r.cancelled += 1;
    }
  };
  await Promise.all(o.jwts.map(async (_, user) => buyer(user, await join(user))));
  clearInterval(progress);
  r.durationS = (Date.now() - started) / 1000;
  r.admissionInstants.sort((a, b) => a - b);
  return r;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
