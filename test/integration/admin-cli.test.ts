// `flashsale-admin` as operators run it: the compiled command (package.json "bin") in a
// child process, against the engine's API on the run's own stores. Every action is checked
// through the API too, not only by what the command printed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buy, startEngine, token, uid, until, waitForDrain, type RunningApi } from '../helpers.js';

const root = join(import.meta.dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
};
const bin = join(root, pkg.bin['flashsale-admin']!);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the command to its end, or until `stopAfter` sends it SIGINT (as Ctrl-C would). */
function cli(
  args: string[],
  env: Record<string, string>,
  opts: { stopWhen?: (stdout: string) => boolean } = {},
): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (opts.stopWhen?.(stdout)) child.kill('SIGINT');
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    }),
  );
}

describe('flashsale-admin', { timeout: 180_000 }, () => {
  let api: RunningApi;
  let env: Record<string, string>;
  const admin = (...args: string[]) => cli(args, env);
  const view = async (sku: string): Promise<{ available: number }> =>
    (await fetch(`${api.url}/v1/skus/${sku}`)).json() as Promise<{ available: number }>;

  before(async () => {
    api = await startEngine(['writer', 'relay', 'api'], { REPAIR_ENABLED: 'true' });
    env = { FLASHSALE_URL: api.url, FLASHSALE_ADMIN_TOKEN: api.engine.cfg.ADMIN_TOKEN };
  });
  after(() => api.stop());

  it('is the package\'s "flashsale-admin" bin, runnable as it is', () => {
    assert.match(readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });

  it('creates, shows, restocks, pauses and resumes a SKU', async () => {
    const sku = uid('cli');
    const create = [
      'sku',
      'create',
      sku,
      '--name',
      'Red sneakers',
      '--stock',
      '10',
      '--limit',
      '3',
    ];
    const created = await admin(...create);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stderr, '');
    assert.deepEqual(created.stdout.split('\n'), [
      `created ${sku}`,
      '  name            Red sneakers',
      '  stock           10 (available 10)',
      '  per-user limit  3',
      '  sale            open now -> no end',
      `  reservations    held ${api.engine.cfg.DEFAULT_RESERVATION_TTL_SECONDS} s`,
      '',
    ]);
    assert.deepEqual(await view(sku), {
      sku,
      available: 10,
      status: 'active',
      startsAt: null,
      endsAt: null,
      waitingRoom: false,
      qualificationRequired: false,
    });
    const again = await admin(...create, '--json');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).stock, 10, 'the same definition again: the API answer');
    const other = await admin('sku', 'create', sku, '--name', 'Red sneakers', '--stock', '11');
    assert.equal(other.code, 1);
    assert.match(other.stderr, /^error: SKU_EXISTS \(HTTP 409\): /);

    const buyer = await token(uid('u'));
    assert.equal((await buy(api, sku, buyer, uid('k'))).status, 201);
    const shown = await admin('sku', 'show', sku);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      new RegExp(
        `^${sku}  active\n  available +9 of 10 supplied\n  sale +open now -> no end\n  buyers +buy directly\n`,
      ),
    );
    const shownJson = JSON.parse((await admin('sku', 'show', sku, '--json')).stdout);
    assert.equal(shownJson.sku.available, 9);
    assert.equal(shownJson.reconciliation.sku, sku);

    const restocked = await admin('restock', sku, '5', '--reason', 'second pallet');
    assert.equal(restocked.code, 0, restocked.stderr);
    assert.match(
      restocked.stdout,
      new RegExp(`^restocked ${sku} by 5: available 14, supplied 15 \\(sequence 2\\)\n$`),
    );
    assert.equal((await view(sku)).available, 14);

    const paused = await admin('pause', sku);
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal(paused.stdout, `paused ${sku}\n`);
    const refused = await buy(api, sku, buyer, uid('k'));
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'SKU_UNAVAILABLE');
    assert.equal(
      (await admin('pause', sku)).stdout,
      `${sku} was already paused: nothing changed\n`,
    );

    const resumed = await admin('resume', sku, '--json');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(JSON.parse(resumed.stdout), { sku, paused: false, changed: true });
    assert.equal((await buy(api, sku, buyer, uid('k'))).status, 201);
  });

  it("shows and sets a SKU's waiting room, qualification and rate limits", async () => {
    const sku = uid('cliadm');
    assert.equal((await admin('sku', 'create', sku, '--name', 'Drop', '--stock', '5')).code, 0);
    const shown = await admin('admission', sku);
    assert.equal(shown.code, 0, shown.stderr);
    assert.deepEqual(shown.stdout.split('\n'), [
      `${sku} admission`,
      '  waiting room   off',
      '  qualification  not required',
      "  buyer limit    the deployment's",
      "  client limit   the deployment's",
      '',
    ]);

    const set = await admin(
      'admission',
      sku,
      '--waiting-room',
      '50',
      '--per-unit-left',
      '1.5',
      '--admission-ttl',
      '90',
      '--qualification',
      '--buyer-limit',
      '2/5',
      '--client-limit',
      '0/1',
    );
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(set.stdout.split('\n'), [
      `admission of ${sku} set`,
      '  waiting room   on: 50 admissions/s, at most 1.5 outstanding per unit left; passes last 90 s',
      '  qualification  required',
      '  buyer limit    2/s, burst 5',
      "  client limit   none (the deployment's lifted)",
      '',
    ]);
    // What the command set is what the engine holds, and buyers are told to queue.
    const json = JSON.parse((await admin('admission', sku, '--json')).stdout);
    assert.deepEqual(json, {
      sku,
      waitingRoom: { admissionsPerSecond: 50, admissionsPerUnitLeft: 1.5, admissionTtlSeconds: 90 },
      qualificationRequired: true,
      rateLimit: { buyerPerSecond: 2, buyerBurst: 5, clientPerSecond: 0, clientBurst: 1 },
    });
    const public1 = (await (await fetch(`${api.url}/v1/skus/${sku}`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(public1.waitingRoom, true);
    assert.equal(public1.qualificationRequired, true);
    assert.match(
      (await admin('sku', 'show', sku)).stdout,
      /\n {2}buyers +join the waiting room with a Qualification-Token\n/,
    );
    const buyer = await token(uid('u'));
    assert.equal((await buy(api, sku, buyer, uid('k'))).body.error.code, 'NOT_QUALIFIED');

    // Setting replaces everything: what is not given is off again.
    const only = await admin('admission', sku, '--buyer-limit', '3/3', '--json');
    assert.equal(JSON.parse(only.stdout).waitingRoom, null);
    const cleared = await admin('admission', sku, '--clear');
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /^admission of \S+ set\n {2}waiting room {3}off\n/);
    assert.equal((await buy(api, sku, buyer, uid('k'))).status, 201);

    // Created with its settings in one command.
    const queued = uid('cliq');
    const created = await admin(
      ...['sku', 'create', queued, '--name', 'Drop 2', '--stock', '5'],
      ...['--waiting-room', '10', '--qualification', '--client-limit', '1/3'],
    );
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(created.stdout.split('\n').slice(-5), [
      '  waiting room    on: 10 admissions/s; passes last 120 s',
      '  qualification   required',
      "  buyer limit     the deployment's",
      '  client limit    1/s, burst 3',
      '',
    ]);
    assert.deepEqual(JSON.parse((await admin('admission', queued, '--json')).stdout), {
      sku: queued,
      waitingRoom: {
        admissionsPerSecond: 10,
        admissionsPerUnitLeft: null,
        admissionTtlSeconds: 120,
      },
      qualificationRequired: true,
      rateLimit: { clientPerSecond: 1, clientBurst: 3 },
    });

    const unknown = await admin('admission', uid('nosuch'));
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: SKU_NOT_FOUND \(HTTP 404\): /);
  });

  it('compares, repairs and reconciles; lists and resolves alerts', async () => {
    const sku = uid('cli');
    assert.equal((await admin('sku', 'create', sku, '--name', 'Hoodie', '--stock', '5')).code, 0);
    assert.equal((await buy(api, sku, await token(uid('u')), uid('k'))).status, 201);
    await waitForDrain(api.engine, [sku]);

    const compared = await admin('reconcile', sku);
    assert.equal(compared.code, 0, compared.stderr);
    assert.match(compared.stdout, new RegExp(`^${sku}: Redis and PostgreSQL agree\n`));
    assert.match(
      compared.stdout,
      /\n {2}postgresql +available 4, supplied 5, sequence 1, held by live orders 1\n/,
    );

    const repaired = await admin('repair', sku);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.match(
      repaired.stdout,
      new RegExp(`^repaired ${sku} from PostgreSQL: available 4 \\(sequence \\d+\\)\n$`),
    );
    // Repair pauses and resumes the SKU: two events more, then both stores are equal again.
    const seq = (await waitForDrain(api.engine, [sku]))[0]!.db.sequence;

    // An incident as the reconciler would open it; the stores agree, so a pass resolves it.
    await api.engine.incidents.open({
      skuId: sku,
      kind: 'DRIFT',
      redisAvailable: 4,
      dbAvailable: 3,
      redisSequence: seq,
      dbSequence: seq,
      detail: {},
    });
    const open = await admin('alerts', '--open');
    assert.equal(open.code, 0, open.stderr);
    assert.match(open.stdout, /^open incidents \(\d+\)\n/);
    assert.match(
      open.stdout,
      new RegExp(
        `\n {2}DRIFT +${sku} +since \\S+ +last seen \\S+ +redis 4 @ seq ${seq}, postgresql 3 @ seq ${seq}\n`,
      ),
    );
    assert.doesNotMatch(open.stdout, /recently resolved/);

    // The on-demand pass writes only while it holds the reconciler's lease.
    const report = await until(
      'a reconciliation pass that leads',
      async () => {
        const r = await admin('reconcile', '--json');
        assert.equal(r.code, 0, r.stderr);
        const body = JSON.parse(r.stdout) as {
          led: boolean;
          resolved: { sku: string; kind: string }[];
        };
        return body.led ? body : undefined;
      },
      15_000,
      500,
    );
    assert.deepEqual(
      report.resolved.filter((r) => r.sku === sku),
      [{ sku, kind: 'DRIFT' }],
    );
    const human = await admin('reconcile');
    assert.match(human.stdout, /^reconciliation pass at \S+: [\d,]+ SKUs? compared, /);

    const all = await admin('alerts', '--json');
    const alerts = JSON.parse(all.stdout) as {
      open: { sku: string }[];
      recent: { sku: string; kind: string }[];
    };
    assert.ok(!alerts.open.some((i) => i.sku === sku), 'resolved: no longer open');
    assert.ok(alerts.recent.some((i) => i.sku === sku && i.kind === 'DRIFT'));
    assert.match(
      (await admin('alerts')).stdout,
      new RegExp(`\nrecently resolved \\(\\d+\\)\n(.*\n)*  DRIFT +${sku} `),
    );
  });

  it('an engine refusal: its code and message on stderr, exit 1', async () => {
    const missing = await admin('restock', uid('nope'), '5');
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, '');
    assert.equal(missing.stderr, 'error: SKU_NOT_FOUND (HTTP 404): No such SKU.\n');

    const invalid = await admin(
      'sku',
      'create',
      uid('bad'),
      '--name',
      'x',
      '--stock',
      '1',
      '--starts',
      '2026-12-02T00:00:00Z',
      '--ends',
      '2026-12-01T00:00:00Z',
    );
    assert.equal(invalid.code, 1);
    assert.equal(
      invalid.stderr,
      'error: VALIDATION_FAILED (HTTP 400): The request is not valid.\n  endsAt: startsAt must be before endsAt\n',
    );

    const wrongToken = await cli(['alerts'], {
      ...env,
      FLASHSALE_ADMIN_TOKEN: 'not-the-admin-token',
    });
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /^error: UNAUTHORIZED \(HTTP 401\): /);

    // The engine's own variable works too.
    const engineVariable = await cli(['alerts', '--open'], {
      FLASHSALE_URL: api.url,
      ADMIN_TOKEN: api.engine.cfg.ADMIN_TOKEN,
    });
    assert.equal(engineVariable.code, 0, engineVariable.stderr);
  });

  it('an unreachable engine: a message naming the URL, exit 2, at once', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const url = `http://127.0.0.1:${port}`;
    const r = await cli(['alerts'], { ...env, FLASHSALE_URL: url });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      new RegExp(
        `^error: cannot reach the engine at ${url}: connection refused \\(ECONNREFUSED\\)\n`,
      ),
    );
    assert.ok(r.ms < 5000, `answered in ${r.ms} ms`);
  });

  it('watch --once prints one frame of GET /v1/admin/live, without screen control when piped', async () => {
    const sku = uid('cli');
    assert.equal(
      (await admin('sku', 'create', sku, '--name', 'Live one', '--stock', '10', '--limit', '2'))
        .code,
      0,
    );
    assert.equal((await buy(api, sku, await token(uid('u')), uid('k'), 2)).status, 201);

    // API processes publish their counters once a second: wait for this purchase's.
    const nope = uid('nope');
    const mine = await until(
      'the purchase in the live view',
      async () => {
        const json = await admin('watch', sku, nope, '--once', '--json');
        assert.equal(json.code, 0, json.stderr);
        const snap = JSON.parse(json.stdout) as {
          skus: { sku: string; available: number; supplied: number; unitsReserved: number }[];
        };
        assert.deepEqual(
          snap.skus.map((s) => s.sku),
          [sku],
          'the SKUs asked for, an unknown one left out',
        );
        return snap.skus[0]!.unitsReserved === 2 ? snap.skus[0] : undefined;
      },
      10_000,
      300,
    );
    assert.deepEqual(
      { available: mine.available, supplied: mine.supplied },
      { available: 8, supplied: 10 },
    );

    const frame = await admin('watch', sku, '--once');
    assert.equal(frame.code, 0, frame.stderr);
    assert.ok(!frame.stdout.includes('\x1b'), 'no ANSI control when stdout is not a terminal');
    const lines = frame.stdout.split('\n');
    assert.match(lines[0]!, new RegExp(`^flashsale live  \\S+  ${api.url}$`));
    assert.match(
      lines[2]!,
      /^SKU +NAME +STATUS +LEFT +SUPPLIED +SOLD\/S +RESERVED +EXPIRE<60S +REFUSED$/,
    );
    assert.match(
      lines[3]!,
      new RegExp(`^${sku} +Live one +active +8 +10 +[\\d.]+ +2 +\\d+ +\\d+$`),
    );
    assert.match(
      frame.stdout,
      /\npipeline {3}stream entries [\d,-]+, writer lag [\d,-]+ events, relay lag [\d.,-]+ s?\n/,
    );
    assert.match(frame.stdout, /\nincidents {2}[\d,-]+ open/);

    // Without --once it redraws every interval until Ctrl-C, and exits 0.
    const frames = (out: string) => out.split('flashsale live  ').length - 1;
    const live = await cli(['watch', sku, '--interval', '0.3'], env, {
      stopWhen: (out) => frames(out) >= 2,
    });
    assert.equal(live.code, 0, live.stderr);
    assert.ok(frames(live.stdout) >= 2, live.stdout);
    assert.ok(!live.stdout.includes('\x1b'));
  });
});
