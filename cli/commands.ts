// The admin commands: the command line they take, the API route each calls, what each
// prints, and the exit codes. `main` is the whole program; admin.ts only hands it the process.
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { AdminClient, ApiError, segment, UnreachableError } from './api-client.js';
import {
  formatAdmission,
  formatAlerts,
  formatComparison,
  formatCreated,
  formatPass,
  formatPaused,
  formatRepaired,
  formatRestocked,
  formatShow,
  type Admission,
  type Alerts,
  type Comparison,
  type CreatedSku,
  type PassReport,
  type PauseResult,
  type PublicSku,
  type Repaired,
  type Restocked,
} from './format.js';
import { readLiveSnapshot, renderLive, type LiveSnapshot } from './watch-view.js';

export const EXIT = { ok: 0, refused: 1, unreachable: 2, usage: 64 } as const;

/** The engine's default PORT and HOST (src/shared/config.ts; a unit test keeps them in step). */
export const DEFAULT_URL = 'http://127.0.0.1:3000';
const REQUEST_TIMEOUT_MS = 60_000;
const DEFAULT_RESTOCK_REASON = 'restock by flashsale-admin';
const DEFAULT_INTERVAL_S = 2;

export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose usage to show; undefined for the general one. */
    readonly command?: CommandSpec,
    readonly showUsage = true,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Where the program writes: process.stdout and process.stderr, or a test's buffers. */
export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder of the value in help, e.g. N. */
  value?: string;
  help: string;
}
type Values = Record<string, string | boolean | undefined>;

interface Context {
  /** Built on first use, so usage errors come before a missing token. */
  api(): AdminClient;
  json: boolean;
  stdout: Output;
  print(lines: string[]): void;
  printJson(body: unknown): void;
}

interface CommandSpec {
  words: string[];
  /** `<id>` required, `[<id>]` optional. */
  params: string[];
  summary: string;
  /** The API routes it calls, for its help. */
  routes: string[];
  options: Record<string, OptionSpec>;
  run(ctx: Context, params: string[], values: Values): Promise<void>;
}

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: 'URL', help: `the engine (FLASHSALE_URL; default ${DEFAULT_URL})` },
  token: {
    type: 'string',
    value: 'T',
    help: 'admin bearer token (FLASHSALE_ADMIN_TOKEN or ADMIN_TOKEN; prefer those: a flag shows in ps)',
  },
  json: { type: 'boolean', help: "print the API's JSON as it answered, for scripts" },
  help: { type: 'boolean', short: 'h', help: 'this help' },
};

function required(value: string | boolean | undefined, flag: string, command: CommandSpec) {
  if (typeof value !== 'string' || value === '')
    throw new UsageError(`${flag} is required`, command);
  return value;
}

const optionalString = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

type Read<T> = (value: string | boolean | undefined, flag: string, command: CommandSpec) => T;

/** An option's value read by `read`, or undefined when the option was not given. */
function optional<T>(
  value: string | boolean | undefined,
  flag: string,
  command: CommandSpec,
  read: Read<T>,
): T | undefined {
  return value === undefined ? undefined : read(value, flag, command);
}

/** A reader of numbers the operator types in `shape`; the API judges their range. */
function numbers(shape: RegExp, kind: string): Read<number> {
  return (value, flag, command) => {
    if (typeof value !== 'string' || !shape.test(value))
      throw new UsageError(`${flag} must be ${kind}, not ${JSON.stringify(value ?? '')}`, command);
    return Number(value);
  };
}

const whole = numbers(/^\d{1,15}$/, 'a whole number');
/** Fractions allowed. */
const decimal = numbers(/^\d{1,15}(\.\d{1,15})?$/, 'a number');

/** `RATE/BURST`, e.g. 2/5: a rate per second (0 lifts the limit) and a whole burst. */
function rateAndBurst(value: string | boolean | undefined, flag: string, command: CommandSpec) {
  const m = typeof value === 'string' ? /^([^/]*)\/([^/]*)$/.exec(value) : null;
  if (!m) throw new UsageError(`${flag} must be RATE/BURST, e.g. 2/5`, command);
  return [decimal(m[1], `${flag} RATE`, command), whole(m[2], `${flag} BURST`, command)] as const;
}

const skuPath = (id: string) => `v1/admin/skus/${segment(id)}`;

/** The options that set a SKU's admission settings (`admission` and `sku create`). */
const ADMISSION_OPTIONS: Record<string, OptionSpec> = {
  'waiting-room': {
    type: 'string',
    value: 'N',
    help: 'turn the waiting room on, admitting N buyers per second from the opening',
  },
  'per-unit-left': {
    type: 'string',
    value: 'X',
    help: 'turn it on (or also) keeping at most X admissions outstanding per unit left',
  },
  'admission-ttl': {
    type: 'string',
    value: 'S',
    help: 'seconds an admission lasts (with the waiting room; default 120)',
  },
  qualification: { type: 'boolean', help: "require the seller's Qualification-Token" },
  'buyer-limit': {
    type: 'string',
    value: 'R/B',
    help: "this SKU's limit per buyer: R per second, burst B (0/1 lifts the deployment's)",
  },
  'client-limit': {
    type: 'string',
    value: 'R/B',
    help: 'the same per client address',
  },
};

/** The admission settings the options give: what is not given is off, or the deployment's. */
function admissionOf(v: Values, command: CommandSpec) {
  const room = v['waiting-room'] !== undefined || v['per-unit-left'] !== undefined;
  if (v['admission-ttl'] !== undefined && !room)
    throw new UsageError('--admission-ttl needs --waiting-room or --per-unit-left', command);
  const buyer = optional(v['buyer-limit'], '--buyer-limit', command, rateAndBurst);
  const client = optional(v['client-limit'], '--client-limit', command, rateAndBurst);
  return {
    waitingRoom: room
      ? {
          admissionsPerSecond: optional(v['waiting-room'], '--waiting-room', command, decimal),
          admissionsPerUnitLeft: optional(v['per-unit-left'], '--per-unit-left', command, decimal),
          admissionTtlSeconds: optional(v['admission-ttl'], '--admission-ttl', command, whole),
        }
      : null,
    qualificationRequired: v.qualification === true,
    rateLimit:
      buyer || client
        ? {
            ...(buyer ? { buyerPerSecond: buyer[0], buyerBurst: buyer[1] } : {}),
            ...(client ? { clientPerSecond: client[0], clientBurst: client[1] } : {}),
          }
        : null,
  };
}

const COMMANDS: CommandSpec[] = [
  {
    words: ['sku', 'create'],
    params: ['<id>'],
    summary:
      'Create a SKU and its sale. Sending the same definition again is harmless (it says so); another one for the same id is SKU_EXISTS.',
    routes: ['POST /v1/admin/skus'],
    options: {
      name: { type: 'string', value: 'NAME', help: 'product name (required)' },
      stock: { type: 'string', value: 'N', help: 'units on sale (required)' },
      limit: { type: 'string', value: 'N', help: 'most units one buyer may hold (default 1)' },
      starts: {
        type: 'string',
        value: 'ISO',
        help: 'sale opens, e.g. 2026-11-25T10:00:00Z (default now)',
      },
      ends: { type: 'string', value: 'ISO', help: 'sale closes (default never)' },
      ttl: {
        type: 'string',
        value: 'S',
        help: "seconds a reservation holds its units (default the engine's)",
      },
      ...ADMISSION_OPTIONS,
    },
    async run(ctx, [id], v) {
      const body = {
        sku: id,
        name: required(v.name, '--name', this),
        stock: whole(v.stock, '--stock', this),
        perUserLimit: v.limit === undefined ? 1 : whole(v.limit, '--limit', this),
        startsAt: optionalString(v.starts),
        endsAt: optionalString(v.ends),
        reservationTtlSeconds: optional(v.ttl, '--ttl', this, whole),
        ...admissionOf(v, this),
      };
      const a = await ctx.api().request('POST', 'v1/admin/skus', body);
      if (ctx.json) return ctx.printJson(a.body);
      const replayed = a.headers.get('idempotent-replayed') === 'true';
      ctx.print(formatCreated(a.body as CreatedSku, replayed));
    },
  },
  {
    words: ['sku', 'show'],
    params: ['<id>'],
    summary:
      'A SKU now: sale status and units left, and Redis beside PostgreSQL. --json prints {"sku": <public view>, "reconciliation": <comparison>}.',
    routes: ['GET /v1/skus/{sku}', 'GET /v1/admin/skus/{sku}/reconciliation'],
    options: {},
    async run(ctx, [id]) {
      const api = ctx.api();
      const [view, comparison] = await Promise.all([
        api.request('GET', `v1/skus/${segment(id!)}`),
        api.request('GET', `${skuPath(id!)}/reconciliation`),
      ]);
      if (ctx.json) return ctx.printJson({ sku: view.body, reconciliation: comparison.body });
      ctx.print(formatShow(view.body as PublicSku, comparison.body as Comparison));
    },
  },
  {
    words: ['restock'],
    params: ['<id>', '<quantity>'],
    summary: 'Add units to a SKU.',
    routes: ['POST /v1/admin/skus/{sku}/restock'],
    options: {
      reason: {
        type: 'string',
        value: 'TEXT',
        help: `why, kept with the stock event (default "${DEFAULT_RESTOCK_REASON}")`,
      },
    },
    async run(ctx, [id, qty], v) {
      const quantity = whole(qty, '<quantity>', this);
      const reason = optionalString(v.reason) ?? DEFAULT_RESTOCK_REASON;
      const a = await ctx.api().request('POST', `${skuPath(id!)}/restock`, { quantity, reason });
      if (ctx.json) return ctx.printJson(a.body);
      ctx.print(formatRestocked(a.body as Restocked, quantity));
    },
  },
  ...(['pause', 'resume'] as const).map((action): CommandSpec => ({
    words: [action],
    params: ['<id>'],
    summary:
      action === 'pause'
        ? "Pause a SKU's sales: purchases, cancels, confirmations, expiries and restocks answer 503 SKU_UNAVAILABLE until it resumes."
        : "Resume a paused SKU's sales.",
    routes: [`POST /v1/admin/skus/{sku}/${action}`],
    options: {},
    async run(ctx, [id]) {
      const a = await ctx.api().request('POST', `${skuPath(id!)}/${action}`);
      if (ctx.json) return ctx.printJson(a.body);
      ctx.print(formatPaused(a.body as PauseResult));
    },
  })),
  {
    words: ['repair'],
    params: ['<id>'],
    summary:
      "Rebuild a SKU's Redis state from PostgreSQL (sales pause meanwhile; the engine needs REPAIR_ENABLED=true).",
    routes: ['POST /v1/admin/skus/{sku}/repair'],
    options: {},
    async run(ctx, [id]) {
      const a = await ctx.api().request('POST', `${skuPath(id!)}/repair`);
      if (ctx.json) return ctx.printJson(a.body);
      ctx.print(formatRepaired(a.body as Repaired));
    },
  },
  {
    words: ['admission'],
    params: ['<id>'],
    summary:
      "A SKU's waiting room, qualification and rate limits. Without options: show them. With any: set them all at once (what is not given is off, not required, or the deployment's limit); --clear turns everything off.",
    routes: ['GET /v1/admin/skus/{sku}/admission', 'PUT /v1/admin/skus/{sku}/admission'],
    options: {
      ...ADMISSION_OPTIONS,
      clear: {
        type: 'boolean',
        help: "no waiting room, no qualification, the deployment's limits",
      },
    },
    async run(ctx, [id], v) {
      const path = `${skuPath(id!)}/admission`;
      // Any setting means "set them all"; none, "show them".
      const given = Object.keys(ADMISSION_OPTIONS).filter((s) => v[s] !== undefined);
      if (v.clear === true && given.length)
        throw new UsageError(`--clear takes no other setting (got --${given[0]})`, this);
      if (v.clear !== true && !given.length) {
        const a = await ctx.api().request('GET', path);
        if (ctx.json) return ctx.printJson(a.body);
        return ctx.print(formatAdmission(a.body as Admission, false));
      }
      const body = admissionOf(v, this);
      const a = await ctx.api().request('PUT', path, body);
      if (ctx.json) return ctx.printJson(a.body);
      ctx.print(formatAdmission(a.body as Admission, true));
    },
  },
  {
    words: ['reconcile'],
    params: ['[<id>]'],
    summary:
      'Without an id: run a reconciliation pass over every SKU now (opens and resolves incidents). With one: compare that SKU in Redis and PostgreSQL now, changing nothing.',
    routes: ['POST /v1/admin/reconcile', 'GET /v1/admin/skus/{sku}/reconciliation'],
    options: {},
    async run(ctx, [id]) {
      if (id === undefined) {
        const a = await ctx.api().request('POST', 'v1/admin/reconcile');
        if (ctx.json) return ctx.printJson(a.body);
        return ctx.print(formatPass(a.body as PassReport));
      }
      const a = await ctx.api().request('GET', `${skuPath(id)}/reconciliation`);
      if (ctx.json) return ctx.printJson(a.body);
      ctx.print(formatComparison(a.body as Comparison));
    },
  },
  {
    words: ['alerts'],
    params: [],
    summary: 'Open incidents and the most recently resolved ones.',
    routes: ['GET /v1/admin/alerts'],
    options: {
      open: {
        type: 'boolean',
        help: 'only the open ones (with --json: the answer without "recent")',
      },
    },
    async run(ctx, _params, v) {
      const a = await ctx.api().request('GET', 'v1/admin/alerts');
      const alerts = a.body as Alerts;
      if (ctx.json) return ctx.printJson(v.open ? { open: alerts.open } : alerts);
      ctx.print(formatAlerts(alerts, v.open === true));
    },
  },
  {
    words: ['watch'],
    params: ['[<id>...]'],
    summary:
      'A live view of the sale, redrawn every interval until Ctrl-C: per SKU units left and supplied, sold per second, units reserved and expiring within 60 s, refusals by reason; pipeline lag; open incidents. Without ids, the 100 most recently created SKUs. --json prints each snapshot as one line.',
    routes: ['GET /v1/admin/live'],
    options: {
      interval: {
        type: 'string',
        value: 'S',
        help: `seconds between frames (default ${DEFAULT_INTERVAL_S})`,
      },
      once: { type: 'boolean', help: 'print one frame and exit' },
    },
    async run(ctx, ids, v) {
      const interval =
        v.interval === undefined ? DEFAULT_INTERVAL_S : Number(optionalString(v.interval));
      if (!(interval >= 0.2 && interval <= 3600))
        throw new UsageError('--interval must be a number of seconds from 0.2 to 3600', this);
      await watch(ctx, { skus: ids, intervalMs: interval * 1000, once: v.once === true });
    },
  },
];

async function fetchLive(
  api: AdminClient,
  skus: string[],
  opts: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<{ body: unknown; snapshot: LiveSnapshot }> {
  const selection = skus.length ? `?sku=${skus.map(segment).join(',')}` : '';
  const a = await api.request('GET', `v1/admin/live${selection}`, undefined, opts);
  try {
    return { body: a.body, snapshot: readLiveSnapshot(a.body) };
  } catch (err) {
    throw new ApiError(
      a.status,
      'UNEXPECTED_ANSWER',
      `GET /v1/admin/live: ${(err as Error).message}`,
      false,
      undefined,
    );
  }
}

/** Errors a live view rides out (the engine restarting mid-sale); others end it. */
const transient = (err: unknown) =>
  err instanceof UnreachableError || (err instanceof ApiError && err.status >= 500);

const ESC = '\x1b[';

/**
 * The first snapshot must come (a wrong URL or token fails at once, with its exit code);
 * after that an unreachable engine keeps the last frame with a note, and the view goes on.
 */
async function watch(
  ctx: Context,
  o: { skus: string[]; intervalMs: number; once: boolean },
): Promise<void> {
  const api = ctx.api();
  const out = ctx.stdout;
  const tty = out.isTTY === true && !ctx.json;
  let { body, snapshot } = await fetchLive(api, o.skus);
  const show = (footer?: string) => {
    if (ctx.json) return out.write(`${JSON.stringify(body)}\n`);
    const lines = renderLive(snapshot, { skus: o.skus, source: api.url, footer });
    if (!tty || o.once) return out.write(`${lines.join('\n')}\n${o.once ? '' : '\n'}`);
    // Home, overwrite each line and clear its rest, clear below: no flicker, no scrollback.
    const width = out.columns && out.columns > 0 ? out.columns : Infinity;
    out.write(`${ESC}H${lines.map((l) => `${l.slice(0, width)}${ESC}K`).join('\n')}${ESC}J`);
  };
  if (o.once) return void show();

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const hint = `every ${o.intervalMs / 1000} s; Ctrl-C to stop`;
  if (tty) out.write(`${ESC}?25l${ESC}2J`);
  try {
    let failure: string | undefined;
    while (!stop.signal.aborted) {
      show(tty ? (failure ?? hint) : failure);
      try {
        await sleep(o.intervalMs, undefined, { signal: stop.signal });
      } catch {
        break; // aborted by Ctrl-C
      }
      try {
        // A frame late by more than a few intervals is news in itself: say so, try again.
        const timeoutMs = Math.max(5000, 3 * o.intervalMs);
        ({ body, snapshot } = await fetchLive(api, o.skus, { signal: stop.signal, timeoutMs }));
        failure = undefined;
      } catch (err) {
        if (stop.signal.aborted) break;
        if (!transient(err)) throw err;
        failure = `${new Date().toISOString()} ${(err as Error).message}; showing the last frame, retrying`;
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (tty) out.write(`${ESC}?25h\n`);
  }
}

function commandName(c: CommandSpec): string {
  return c.words.join(' ');
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, o]) => [
    `${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` ${o.value}` : ''}`,
    o.help,
  ]);
  const width = Math.max(...rows.map(([flag]) => flag!.length));
  return rows.map(([flag, help]) => `  ${flag!.padEnd(width)}  ${help}`);
}

function synopsis(c: CommandSpec): string {
  const opts = Object.entries(c.options).map(([name, o]) => {
    const flag = `--${name}${o.value ? ` ${o.value}` : ''}`;
    return name === 'name' || name === 'stock' ? flag : `[${flag}]`;
  });
  return [commandName(c), ...c.params, ...opts].join(' ');
}

export function usage(command?: CommandSpec): string {
  if (command) {
    return [
      `usage: flashsale-admin ${synopsis(command)} [--json] [--url URL] [--token T]`,
      '',
      command.summary,
      '',
      `API: ${command.routes.join(', ')}`,
      ...(Object.keys(command.options).length
        ? ['', 'options:', ...optionLines(command.options)]
        : []),
      '',
      'options of every command:',
      ...optionLines(GLOBAL_OPTIONS),
    ].join('\n');
  }
  return [
    "flashsale-admin: the flash-sale engine's admin actions, over its REST API",
    '',
    'usage: flashsale-admin <command> [arguments] [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${synopsis(c)}`),
    '',
    'options of every command:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'flashsale-admin <command> --help tells more about one command.',
    'exit codes: 0 done; 1 the engine refused (its error code on stderr); 2 engine unreachable; 64 bad usage',
  ].join('\n');
}

export interface Invocation {
  command: CommandSpec | undefined;
  params: string[];
  values: Values;
  help: boolean;
}

/** Every option of every command in one parse, so each flag's kind is known wherever it is. */
const ALL_OPTIONS = Object.fromEntries(
  [GLOBAL_OPTIONS, ...COMMANDS.map((c) => c.options)].flatMap((set) =>
    Object.entries(set).map(([name, o]) => [
      name,
      o.short ? { type: o.type, short: o.short } : { type: o.type },
    ]),
  ),
) as Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Which command and with what; throws UsageError on anything it cannot take. */
export function parseCommandLine(argv: string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: ALL_OPTIONS, allowPositionals: true, tokens: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { positionals, tokens } = parsed;
  const values = parsed.values as Values;
  const askHelp = positionals[0] === 'help';
  const words = askHelp ? positionals.slice(1) : positionals;
  const help = askHelp || values.help === true;
  if (words.length === 0) {
    if (help) return { command: undefined, params: [], values, help };
    throw new UsageError('no command given');
  }
  const command = COMMANDS.find((c) => c.words.every((w, i) => words[i] === w));
  if (!command) {
    const group = COMMANDS.filter((c) => c.words[0] === words[0]);
    throw new UsageError(
      group.length > 0
        ? `${words[0]} takes one of: ${group.map((c) => c.words[1]).join(', ')}`
        : `unknown command ${JSON.stringify(words[0])}`,
    );
  }
  if (help) return { command, params: [], values, help };
  for (const t of tokens) {
    if (t.kind === 'option' && !(t.name in GLOBAL_OPTIONS) && !(t.name in command.options))
      throw new UsageError(`${t.rawName} is not an option of ${commandName(command)}`, command);
  }
  const params = words.slice(command.words.length);
  const min = command.params.filter((p) => !p.startsWith('[')).length;
  const max = command.params.at(-1)?.endsWith('...]') ? Infinity : command.params.length;
  if (params.length < min || params.length > max)
    throw new UsageError(
      params.length < min
        ? `missing ${command.params.slice(params.length, min).join(' ')}`
        : `unexpected ${JSON.stringify(params[command.params.length])}`,
      command,
    );
  return { command, params, values, help };
}

/** The engine's URL: --url, FLASHSALE_URL, or the engine's default address. */
export function engineUrl(values: Values, env: NodeJS.ProcessEnv): string {
  const url = optionalString(values.url) || env.FLASHSALE_URL || DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new UsageError(
      `the engine's URL must be http:// or https://, not ${JSON.stringify(url)}`,
    );
  return url;
}

/** --token, FLASHSALE_ADMIN_TOKEN, then the engine's own ADMIN_TOKEN. */
export function adminToken(values: Values, env: NodeJS.ProcessEnv): string {
  const token = optionalString(values.token) || env.FLASHSALE_ADMIN_TOKEN || env.ADMIN_TOKEN;
  if (!token)
    throw new UsageError(
      'no admin token: set FLASHSALE_ADMIN_TOKEN (or ADMIN_TOKEN), or pass --token',
      undefined,
      false,
    );
  return token;
}

function describeApiError(err: ApiError, url: string): string[] {
  const lines = [`error: ${err.code} (HTTP ${err.status}): ${err.message}`];
  const issues = err.details?.issues;
  if (Array.isArray(issues)) {
    for (const i of issues as { path?: unknown; message?: unknown }[])
      lines.push(
        `  ${typeof i.path === 'string' && i.path ? i.path : 'body'}: ${String(i.message)}`,
      );
  } else if (err.details) {
    lines.push(`  ${JSON.stringify(err.details)}`);
  }
  if (err.code === 'UNAUTHORIZED' || err.code === 'FORBIDDEN')
    lines.push('  check the admin token (FLASHSALE_ADMIN_TOKEN, ADMIN_TOKEN or --token)');
  if (err.code === 'NOT_FOUND')
    lines.push(`  the engine at ${url} has no such route: is it an older version?`);
  return lines;
}

/** The program: runs one command and answers its exit code. */
export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv,
  stdout: Output,
  stderr: Output,
): Promise<number> {
  let url = DEFAULT_URL;
  try {
    const inv = parseCommandLine(argv);
    if (inv.help) {
      stdout.write(`${usage(inv.command)}\n`);
      return EXIT.ok;
    }
    const command = inv.command!;
    url = engineUrl(inv.values, env);
    let client: AdminClient | undefined;
    const ctx: Context = {
      api: () => (client ??= new AdminClient(url, adminToken(inv.values, env), REQUEST_TIMEOUT_MS)),
      json: inv.values.json === true,
      stdout,
      print: (lines) => stdout.write(lines.length ? `${lines.join('\n')}\n` : ''),
      printJson: (body) => stdout.write(`${JSON.stringify(body, null, 2)}\n`),
    };
    await command.run(ctx, inv.params, inv.values);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      stderr.write(`error: ${err.message}\n${err.showUsage ? `\n${usage(err.command)}\n` : ''}`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      stderr.write(`${describeApiError(err, url).join('\n')}\n`);
      return EXIT.refused;
    }
    if (err instanceof UnreachableError) {
      stderr.write(
        `error: ${err.message}\n  is it running there? Point at it with --url or FLASHSALE_URL.\n`,
      );
      return EXIT.unreachable;
    }
    throw err;
  }
}
