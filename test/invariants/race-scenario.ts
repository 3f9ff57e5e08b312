// The purchase race as a scenario over any two API instances that share one Redis (single
// node or cluster): 2,000 concurrent purchases from 1,000 users (limit 1) plus retries.
import assert from 'node:assert/strict';
import { buy, createSku, redisState, token, uid, type RunningApi } from '../helpers.js';

export async function raceScenario(a: RunningApi, b: RunningApi): Promise<void> {
  const sku = uid('race');
  await createSku(a, { sku, stock: 100, perUserLimit: 1 });
  const users = Array.from({ length: 1000 }, (_, i) => `u${i}-${sku.slice(-6)}`);
  const tokens = await Promise.all(users.map((u) => token(u)));

  type Attempt = { user: number; key: string; api: RunningApi };
  const attempts: Attempt[] = [];
  users.forEach((_, i) => {
    attempts.push({ user: i, key: `${sku}-${i}-a`, api: i % 2 ? a : b });
    attempts.push({ user: i, key: `${sku}-${i}-b`, api: i % 2 ? b : a });
  });
  // Every fifth user retries its first key, on the other instance.
  const retries = users.flatMap((_, i) =>
    i % 5 === 0 ? [{ user: i, key: `${sku}-${i}-a`, api: i % 2 ? b : a }] : [],
  );
  const all = [...attempts, ...retries].sort(() => Math.random() - 0.5);

  const settled = await Promise.allSettled(all.map((t) => buy(t.api, sku, tokens[t.user]!, t.key)));
  const results = settled.map((s, i) => {
    const reason = (s as PromiseRejectedResult).reason as { cause?: unknown } | undefined;
    assert.equal(s.status, 'fulfilled', `${String(reason)} (${String(reason?.cause)})`);
    return {
      ...all[i]!,
      ...(s as PromiseFulfilledResult<Awaited<ReturnType<typeof buy>>>).value,
    };
  });

  const statuses = new Map<string, number>();
  for (const r of results) {
    const label =
      r.status === 201
        ? r.replayed
          ? 'replayed'
          : 'created'
        : `${r.status} ${r.body.error?.code}`;
    statuses.set(label, (statuses.get(label) ?? 0) + 1);
  }
  const created = results.filter((r) => r.status === 201 && !r.replayed);
  assert.equal(created.length, 100, JSON.stringify([...statuses]));
  for (const r of results.filter((x) => x.status !== 201)) {
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.ok(['SOLD_OUT', 'LIMIT_EXCEEDED'].includes(r.body.error.code), r.body.error.code);
  }

  // Idempotency: each key that succeeded has one order id; every other answer is a replay.
  const byKey = new Map<string, typeof results>();
  for (const r of results.filter((x) => x.status === 201))
    byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
  let replays = 0;
  for (const [key, rs] of byKey) {
    assert.equal(new Set(rs.map((r) => r.body.orderId)).size, 1, key);
    assert.equal(rs.filter((r) => !r.replayed).length, 1, key);
    replays += rs.filter((r) => r.replayed).length;
  }
  const retriedWinners = retries.filter((t) => byKey.has(t.key)).length;
  assert.equal(replays, retriedWinners, 'every retry of a successful key was replayed');

  // No user over the limit; conservation in Redis.
  const perUser = new Map<number, number>();
  for (const r of created) perUser.set(r.user, (perUser.get(r.user) ?? 0) + r.body.quantity);
  assert.ok([...perUser.values()].every((n) => n <= 1));
  const state = await redisState(a.engine, sku);
  assert.equal(state.available, 0);
  assert.equal(state.supplied, 100);
  const held = Object.values(state.users).reduce((s, n) => s + n, 0);
  assert.equal(state.available + held, state.supplied, 'available + held == supplied');
  assert.ok(
    Object.values(state.users).every((n) => n <= 1),
    'no user holds more than the limit',
  );
  assert.equal(state.seq, 100, 'one event per accepted purchase');

  // One event per order in the partition's stream.
  const k = a.engine.keys.forSku(sku);
  const entries = await a.engine.redis.xrange(k.events, '-', '+');
  const mine = entries.map(([, f]) => JSON.parse(f[1]!)).filter((e) => e.sku === sku);
  const orderIds = new Set(created.map((r) => r.body.orderId));
  const relayed = mine.length < 100; // a running relay may have moved some already
  if (!relayed) {
    assert.equal(mine.length, 100);
    assert.deepEqual(new Set(mine.map((e) => e.orderId)), orderIds);
    assert.deepEqual(
      mine.map((e) => e.seq).sort((x, y) => x - y),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  }
}
