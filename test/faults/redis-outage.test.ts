// Redis unreachable mid-load, against a redis-server of this test's own (AOF, fsync always)
// and engine processes started the way an operator starts them: the server hung
// (SIGSTOP) for 10 s, then killed and restarted on the same data. Purchases must answer
// 503 SERVICE_UNAVAILABLE with Retry-After within about a second while it is away, the
// engine must recover by itself when it returns, and SIGTERM must stop an engine process
// promptly while its Redis hangs. At the end both stores hold every acknowledged order once.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { assertStoresAgree, startEngine, token, uid, until, type RunningApi } from '../helpers.js';
import { killAll, spawnRoles, supervise, type Supervised } from '../support/processes.js';
import { startOwnRedis, type OwnRedis } from '../support/redis-server.js';

interface Answer {
  at: number;
  ms: number;
  status: number;
  code?: string;
  retryAfter: string | null;
}

/**
 * Buyers in a loop until stopped: each purchase gets a fresh Idempotency-Key; a 503 or a
 * lost answer is retried with the same key, as a client would, until it gets an answer.
 */
function startLoad(apiUrl: () => Promise<string>, skus: string[]) {
  const answers: Answer[] = [];
  const accepted = new Map<string, string>(); // orderId -> sku
  let stopped = false;
  const buyers = 40;
  const run = async (b: number) => {
    const jwts = await Promise.all(Array.from({ length: 8 }, (_, i) => token(`ro${b}x${i}`)));
    for (let n = 0; !stopped; n++) {
      const sku = skus[(b + n) % skus.length]!;
      const jwt = jwts[n % jwts.length]!;
      const key = `k-${b}-${n}`;
      for (;;) {
        const t0 = Date.now();
        try {
          const res = await fetch(`${await apiUrl()}/v1/skus/${sku}/purchases`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${jwt}`,
              'idempotency-key': key,
              'content-type': 'application/json',
            },
            body: '{"quantity":1}',
            signal: AbortSignal.timeout(20_000),
          });
          const body = (await res.json()) as { orderId?: string; error?: { code: string } };
          answers.push({
            at: t0,
            ms: Date.now() - t0,
            status: res.status,
            ...(body.error ? { code: body.error.code } : {}),
            retryAfter: res.headers.get('retry-after'),
          });
          if (res.status === 201 && body.orderId) accepted.set(body.orderId, sku);
          if (res.status < 500) break;
        } catch {
          answers.push({ at: t0, ms: Date.now() - t0, status: 0, retryAfter: null });
        }
        if (stopped) return;
        await sleep(100);
      }
    }
  };
  const done = Promise.all(Array.from({ length: buyers }, (_, b) => run(b)));
  return {
    answers,
    accepted,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/** Answers to purchases sent while Redis was away (skipping the ones already in flight). */
function duringOutage(answers: Answer[], from: number, to: number): Answer[] {
  return answers.filter((a) => a.at >= from + 200 && a.at < to - 1600);
}

function assertFastUnavailable(outage: Answer[], what: string): number {
  assert.ok(
    outage.length >= 20,
    `${what}: ${outage.length} purchases sent and answered during the outage (none: buyers stuck waiting)`,
  );
  const slow = outage.filter((a) => a.ms > 1500);
  const wrong = outage.filter(
    (a) => a.status !== 503 || a.code !== 'SERVICE_UNAVAILABLE' || a.retryAfter === null,
  );
  assert.deepEqual(wrong.slice(0, 3), [], `${what}: every purchase answered 503 with Retry-After`);
  assert.deepEqual(slow.slice(0, 3), [], `${what}: each answered within 1.5 s`);
  return Math.max(...outage.map((a) => a.ms));
}

async function readyz(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** The test's own client fails fast too while it reconnects: ask until Redis answers. */
async function untilAnswered<T>(fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** Some purchase succeeded after `since` (Redis came back). */
const createdSince = (answers: Answer[], since: number) =>
  answers.some((a) => a.at >= since && a.status === 201) || undefined;

describe('Redis unreachable mid-load (own redis-server, AOF always)', { timeout: 600_000 }, () => {
  let redis: OwnRedis;
  const supervised: Supervised[] = [];
  let reader: RunningApi | undefined;

  before(async () => {
    redis = await startOwnRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
  });
  after(async () => {
    await Promise.all(supervised.map((p) => p.stop().catch(() => undefined)));
    killAll();
    await reader?.stop().catch(() => undefined);
    await redis.close();
  });

  it('answers 503 fast while Redis hangs or is down, recovers by itself, stops promptly on SIGTERM, loses nothing', async (t) => {
    const env = { REDIS_URL: redis.url, SWEEP_INTERVAL_MS: '200' };
    reader = await startEngine([], env);
    const skus = Array.from({ length: 4 }, () => uid('outage'));
    for (const sku of skus)
      await reader.engine.inventory.createSku({ sku, name: sku, stock: 20000, perUserLimit: 1000 });
    const shortTtl = uid('outage-ttl');
    await reader.engine.inventory.createSku({
      sku: shortTtl,
      name: shortTtl,
      stock: 10,
      perUserLimit: 1,
      reservationTtlSeconds: 1,
    });

    const api = spawnRoles('redis-outage-api', ['api', 'sweeper'], env);
    const pipeline = spawnRoles('redis-outage-pipeline', ['relay', 'writer'], env);
    let restarted: { api: Supervised; pipeline: Supervised };
    let currentUrl = () => api.url;
    const apiUrl = await api.url;
    const load = startLoad(() => currentUrl(), skus);
    try {
      await sleep(2000);
      assert.ok(load.accepted.size > 0, 'purchases succeed before the outage');

      // (a) Redis hung: the connection stays open, nothing answers.
      const stopAt = Date.now();
      redis.freeze();
      await sleep(3000);
      const ready = await readyz(apiUrl);
      assert.equal(ready.status, 503, ready.body);
      assert.equal(
        (JSON.parse(ready.body) as { checks: { redis: { status: string } } }).checks.redis.status,
        'down',
      );
      await sleep(7000);
      const contAt = Date.now();
      redis.thaw();
      const maxHung = assertFastUnavailable(
        duringOutage(load.answers, stopAt, contAt),
        'Redis hung',
      );
      t.diagnostic(`Redis hung (SIGSTOP 10 s): slowest 503 took ${maxHung} ms`);
      await until(
        'a purchase after Redis came back',
        () => createdSince(load.answers, contAt),
        15_000,
      );

      // (b) Redis down: connections refused, then it restarts on the same data.
      const killAt = Date.now();
      await redis.kill();
      await sleep(5000);
      const backAt = Date.now();
      await redis.start();
      const maxDown = assertFastUnavailable(
        duringOutage(load.answers, killAt, backAt),
        'Redis down',
      );
      t.diagnostic(`Redis down (killed, restarted after 5 s): slowest 503 took ${maxDown} ms`);
      await until(
        'a purchase after Redis came back',
        () => createdSince(load.answers, backAt),
        20_000,
      );

      // The same processes resumed every role: the relay and writer carry new events to
      // PostgreSQL, the sweeper expires a reservation made after the outages.
      const seq = Number(
        await untilAnswered(() =>
          reader!.engine.redis.hget(reader!.engine.keys.forSku(skus[0]!).sku, 'seq'),
        ),
      );
      const jwt = await token(uid('u'));
      const res = await fetch(`${apiUrl}/v1/skus/${shortTtl}/purchases`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${jwt}`,
          'idempotency-key': uid('k'),
          'content-type': 'application/json',
        },
        body: '{"quantity":1}',
      });
      const order = (await res.json()) as { orderId: string };
      assert.equal(res.status, 201, JSON.stringify(order));
      const deadline = Date.now() + 30_000;
      let applied = 0;
      let status = '';
      while (Date.now() < deadline && (applied < seq || status !== 'expired')) {
        const row = await reader.engine.db.sku.findUnique({ where: { id: skus[0]! } });
        applied = row?.lastSequence ?? 0;
        const o = await fetch(`${apiUrl}/v1/orders/${order.orderId}`, {
          headers: { authorization: `Bearer ${jwt}` },
        });
        status = ((await o.json()) as { status: string }).status;
        await sleep(200);
      }
      assert.ok(applied >= seq, `PostgreSQL reached sequence ${seq} of ${skus[0]} (at ${applied})`);
      assert.equal(status, 'expired', 'the sweeper expired a 1 s reservation after the outages');

      // (c) SIGTERM while Redis hangs: every engine process exits promptly.
      redis.freeze();
      await sleep(1500);
      const termAt = Date.now();
      api.child.kill('SIGTERM');
      pipeline.child.kill('SIGTERM');
      const [apiExit, pipelineExit] = await Promise.all([
        api.exited.then((how) => ({ how, ms: Date.now() - termAt })),
        pipeline.exited.then((how) => ({ how, ms: Date.now() - termAt })),
      ]);
      redis.thaw();
      t.diagnostic(
        `SIGTERM with Redis hung: api exited in ${apiExit.ms} ms (${String(apiExit.how)}), ` +
          `relay+writer in ${pipelineExit.ms} ms (${String(pipelineExit.how)})`,
      );
      assert.ok(apiExit.ms < 5000, `api exited within 5 s (took ${apiExit.ms} ms)`);
      assert.ok(pipelineExit.ms < 5000, `relay+writer exited within 5 s (${pipelineExit.ms} ms)`);

      // Restart them (as a supervisor would) so the load ends and the pipeline drains.
      restarted = {
        api: supervise('redis-outage-api-2', ['api', 'sweeper'], () => env),
        pipeline: supervise('redis-outage-pipeline-2', ['relay', 'writer'], () => env),
      };
      supervised.push(restarted.api, restarted.pipeline);
      currentUrl = () => restarted.api.proc.url;
      await currentUrl();
      await sleep(2000);
    } finally {
      await load.stop();
    }

    t.diagnostic(
      `${load.accepted.size} purchases acknowledged, ` +
        `${load.answers.filter((a) => a.status === 503).length} answered 503`,
    );
    // Invariants, both stores: every 201 in PostgreSQL once, stock and sequence equal.
    const { engine } = reader;
    await untilAnswered(() => engine.redis.ping());
    const compared = await assertStoresAgree(engine, [...skus, shortTtl], 120_000);
    for (const c of compared) {
      assert.ok(c.db.available >= 0, `${c.sku}: no oversell`);
    }
    const rows = await reader.engine.db.order.findMany({
      where: { skuId: { in: skus } },
      select: { id: true, skuId: true },
    });
    const inDb = new Map(rows.map((r) => [r.id, r.skuId]));
    assert.equal(inDb.size, rows.length, 'no order twice');
    for (const [id, sku] of load.accepted)
      assert.equal(inDb.get(id), sku, `order ${id} in PostgreSQL`);
    for (const sku of skus) {
      const sold = rows.filter((r) => r.skuId === sku).length;
      assert.ok(sold <= 20000, `${sku}: ${sold} sold of 20000`);
    }
    await Promise.all([restarted.api.stop(), restarted.pipeline.stop()]);
  });
});
