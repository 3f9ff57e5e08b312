// The admin command line without an engine: the watch frame from a snapshot, and how the
// command line is read (usage errors never reach the network).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_URL,
  EXIT,
  main,
  parseCommandLine,
  UsageError,
  type Output,
} from '../../cli/commands.js';
import { readLiveSnapshot, renderLive, saleStatus, type LiveSku } from '../../cli/watch-view.js';
import { loadConfig } from '../../src/shared/config.js';

const AT = '2026-11-25T10:00:00.000Z';

const sku = (over: Partial<LiveSku> = {}): LiveSku => ({
  sku: 'sneaker-red',
  name: 'Red sneakers',
  supplied: 600,
  available: 480,
  paused: false,
  startsAt: null,
  endsAt: null,
  soldPerSecond: 12.5,
  unitsReserved: 20,
  refusals: { SOLD_OUT: 0, LIMIT_EXCEEDED: 3 },
  expiringNext60s: 4,
  ...over,
});

const snapshot = {
  at: AT,
  skus: [
    sku(),
    sku({
      sku: 'hoodie-xl',
      name: 'Hoodie, extra large, limited edition',
      supplied: 1000,
      available: 0,
      soldPerSecond: 120.4,
      unitsReserved: 12,
      refusals: { SOLD_OUT: 48210, LIMIT_EXCEEDED: 12 },
      expiringNext60s: null,
    }),
  ],
  pipeline: { streamEntries: 12, consumerLag: 1500, relayLagSeconds: 0.25 },
  incidents: { open: 1 },
};

describe('watch frame', () => {
  it('shows per SKU units left and supplied, sold/s, reservations, refusals by reason; then the pipeline and incidents', () => {
    assert.deepEqual(renderLive(readLiveSnapshot(snapshot), { source: 'http://engine:3000' }), [
      `flashsale live  ${AT}  http://engine:3000`,
      '',
      'SKU          NAME                      STATUS    LEFT  SUPPLIED  SOLD/S  RESERVED  EXPIRE<60S  REFUSED',
      'sneaker-red  Red sneakers              active     480       600    12.5        20           4        3',
      '  refused: LIMIT_EXCEEDED 3',
      'hoodie-xl    Hoodie, extra large, li…  sold out     0     1,000     120        12           -   48,222',
      '  refused: SOLD_OUT 48,210, LIMIT_EXCEEDED 12',
      '  2 SKUs shown, 133 sold/s together',
      '',
      'pipeline   stream entries 12, writer lag 1,500 events, relay lag 0.3 s',
      'incidents  1 open (flashsale-admin alerts --open)',
    ]);
  });

  it('only the SKUs asked for, naming any the view lacks; a footer last', () => {
    const lines = renderLive(readLiveSnapshot(snapshot), {
      skus: ['hoodie-xl', 'nope'],
      footer: 'bye',
    });
    assert.equal(lines.filter((l) => l.startsWith('sneaker-red')).length, 0);
    assert.match(lines[3]!, /^hoodie-xl +Hoodie/);
    assert.ok(!lines.some((l) => l.includes('sold/s together')));
    assert.equal(lines[5], 'nope: not in the live view (no such SKU?)');
    assert.deepEqual(lines.slice(-2), ['', 'bye']);
    const none = renderLive(readLiveSnapshot(snapshot), { skus: ['nope'] });
    assert.deepEqual(none.slice(2, 3), ['nope: not in the live view (no such SKU?)']);
  });

  it('renders "-" for every figure the route does not know (null or missing)', () => {
    const snap = readLiveSnapshot({
      at: null,
      skus: [{ sku: 'x', refusals: null }],
      pipeline: null,
    });
    const lines = renderLive(snap);
    assert.equal(lines[0], 'flashsale live  time unknown');
    assert.match(lines[3]!, /^x +- +\? +- +- +- +- +- +-$/);
    assert.equal(lines.at(-2), 'pipeline   stream entries -, writer lag - events, relay lag -');
    assert.equal(lines.at(-1), 'incidents  - open');
    assert.deepEqual(renderLive(readLiveSnapshot({ at: AT, skus: [] })).slice(2, 3), [
      'no SKUs yet',
    ]);
  });

  it('refuses an answer that is not a live snapshot', () => {
    assert.throws(() => readLiveSnapshot({ error: { code: 'NOT_FOUND' } }), /no "skus" list/);
    assert.throws(() => readLiveSnapshot(null), /no "skus" list/);
  });

  it('says what a buyer is told, judged at the snapshot time', () => {
    assert.equal(saleStatus(sku({ paused: true, available: 0 }), AT), 'paused');
    assert.equal(saleStatus(sku({ startsAt: '2026-11-25T10:00:01.000Z' }), AT), 'scheduled');
    assert.equal(saleStatus(sku({ endsAt: AT }), AT), 'ended');
    assert.equal(saleStatus(sku({ available: 0 }), AT), 'sold out');
    assert.equal(saleStatus(sku({ startsAt: AT }), AT), 'active');
  });
});

describe('admin command line', () => {
  it('defaults to the address the engine listens on by default', () => {
    const cfg = loadConfig({ NODE_ENV: 'test' });
    assert.equal(DEFAULT_URL, `http://${cfg.HOST}:${cfg.PORT}`);
  });

  it('reads commands, their parameters and options in any order', () => {
    const inv = parseCommandLine(['--json', 'sku', 'create', 'a-1', '--stock', '5', '--name', 'A']);
    assert.deepEqual(inv.command?.words, ['sku', 'create']);
    assert.deepEqual(inv.params, ['a-1']);
    assert.equal(inv.values.stock, '5');
    assert.equal(inv.values.json, true);
    assert.equal(parseCommandLine(['watch', '--help']).help, true);
    assert.deepEqual(parseCommandLine(['watch', 'a', 'b', '--once']).params, ['a', 'b']);
    assert.deepEqual(parseCommandLine(['reconcile']).params, []);
  });

  for (const [argv, message] of [
    [[], /no command given/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['sku', 'delete', 'x'], /sku takes one of: create, show/],
    [['restock', 'x'], /missing <quantity>/],
    [['pause', 'x', 'y'], /unexpected "y"/],
    [['pause', 'x', '--interval', '3'], /--interval is not an option of pause/],
    [['alerts', '--bogus'], /Unknown option '--bogus'/],
  ] as const) {
    it(`refuses ${JSON.stringify(argv)}`, () => {
      assert.throws(
        () => parseCommandLine([...argv]),
        (err: unknown) => {
          assert.ok(err instanceof UsageError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  const run = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const sink = (to: string[]): Output => ({ write: (t: string) => to.push(t) });
    const code = await main(argv, env, sink(out), sink(err));
    return { code, out: out.join(''), err: err.join('') };
  };

  it('bad usage exits 64 with the usage text on stderr, before any request', async () => {
    const r = await run(['restock', 'x', 'many'], { FLASHSALE_URL: 'http://127.0.0.1:9' });
    assert.equal(r.code, EXIT.usage);
    assert.equal(r.out, '');
    assert.match(
      r.err,
      /^error: <quantity> must be a whole number, not "many"\n\nusage: flashsale-admin restock <id> <quantity>/,
    );
    const url = await run(['alerts', '--url', 'ftp://x']);
    assert.equal(url.code, EXIT.usage);
    assert.match(url.err, /must be http:\/\/ or https:\/\//);
    const interval = await run(['watch', '--interval', '0'], { FLASHSALE_ADMIN_TOKEN: 't' });
    assert.equal(interval.code, EXIT.usage);
  });

  it('admission: settings that cannot mean anything are refused before any request', async () => {
    const env = { FLASHSALE_URL: 'http://127.0.0.1:9', FLASHSALE_ADMIN_TOKEN: 't' };
    for (const [argv, message] of [
      [['--clear', '--qualification'], /--clear takes no other setting \(got --qualification\)/],
      [['--admission-ttl', '30'], /--admission-ttl needs --waiting-room or --per-unit-left/],
      [['--buyer-limit', '2'], /--buyer-limit must be RATE\/BURST, e.g. 2\/5/],
      [['--client-limit', '2/x'], /--client-limit BURST must be a whole number, not "x"/],
      [['--waiting-room', 'fast'], /--waiting-room must be a number, not "fast"/],
    ] as const) {
      const r = await run(['admission', 'x', ...argv], env);
      assert.equal(r.code, EXIT.usage, r.err);
      assert.match(r.err, message);
      assert.match(r.err, /usage: flashsale-admin admission <id>/);
    }
    // sku create takes the same settings, and refuses them alike.
    const create = ['sku', 'create', 'x', '--name', 'X', '--stock', '1'];
    const ttl = await run([...create, '--admission-ttl', '30'], env);
    assert.equal(ttl.code, EXIT.usage);
    assert.match(ttl.err, /--admission-ttl needs --waiting-room or --per-unit-left/);
  });

  it('without a token says where to put one, exit 64', async () => {
    const r = await run(['alerts']);
    assert.equal(r.code, EXIT.usage);
    assert.equal(
      r.err,
      'error: no admin token: set FLASHSALE_ADMIN_TOKEN (or ADMIN_TOKEN), or pass --token\n',
    );
  });

  it('--help prints the usage on stdout, exit 0', async () => {
    const all = await run(['--help']);
    assert.equal(all.code, EXIT.ok);
    for (const c of [
      'sku create',
      'sku show',
      'restock',
      'pause',
      'resume',
      'repair',
      'admission',
      'reconcile',
      'alerts',
      'watch',
    ])
      assert.match(all.out, new RegExp(`^  ${c} `, 'm'));
    const one = await run(['help', 'watch']);
    assert.equal(one.code, EXIT.ok);
    assert.match(
      one.out,
      /^usage: flashsale-admin watch \[<id>\.\.\.\] \[--interval S\] \[--once\]/,
    );
    assert.match(one.out, /API: GET \/v1\/admin\/live/);
  });
});
