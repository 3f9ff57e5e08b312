// Benchmark plumbing: servers in child processes (so the load generator and the server
// do not share an event loop), autocannon runs, and summaries.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';

/** A fresh id for a bench's SKUs, apart from every earlier run's. */
export const uid = (p: string) => `${p}-${randomBytes(6).toString('hex')}`;

export interface Server {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `node <script>` with env; ready when it prints `listening <url>` or the engine's
 * start line. With BENCH_CPU_PROF=<folder>, each server writes a V8 CPU profile there when
 * it stops (open it in Chrome DevTools, or summarize it with tools/cpu-profile.ts).
 */
export async function startServer(
  script: string,
  env: Record<string, string>,
  args: string[] = [],
): Promise<Server> {
  const profile = process.env.BENCH_CPU_PROF;
  const flags = profile
    ? ['--cpu-prof', `--cpu-prof-dir=${profile}`, `--cpu-prof-name=${profileName(script, args)}`]
    : [];
  const child = spawn(process.execPath, [...flags, script, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  mkdirSync('.services/bench-logs', { recursive: true });
  const logFile = `.services/bench-logs/${[script, ...args].join('-').replace(/[^A-Za-z0-9.-]+/g, '_')}.log`;
  const log = createWriteStream(logFile);
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => log.write(line + '\n'));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} did not start within 120 s; see ${logFile}`));
    }, 120000);
    lines.on('line', (line) => {
      const m =
        /listening (http:\/\/\S+)/.exec(line) ?? /"listening":"(http:\/\/[^"]+)"/.exec(line);
      if (m?.[1] || line.includes('"msg":"engine started"')) {
        clearTimeout(timer);
        resolve(m?.[1] ?? '');
      }
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return {
    url,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

let profiles = 0;
function profileName(script: string, args: string[]): string {
  const name = [script.replace(/^.*\//, '').replace(/\.js$/, ''), ...args].join('-');
  return `${String(++profiles).padStart(2, '0')}-${name}-${process.pid}.cpuprofile`;
}

export async function tokens(secret: string, users: string[]): Promise<string[]> {
  const key = new TextEncoder().encode(secret);
  return Promise.all(
    users.map((u) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(u)
        .setExpirationTime('2h')
        .sign(key),
    ),
  );
}

export interface LoadResult {
  requests: number;
  durationS: number;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  statusCounts: Record<string, number>;
  errors: number;
}

export interface LoadOptions {
  url: string;
  path: string;
  connections?: number;
  durationS?: number;
  amount?: number;
  /** Requests per second across all connections (a steady load instead of flat out). */
  overallRate?: number;
  /** Headers and body for each request (called once per request); meta comes back in onResponse. */
  next: () => { headers: Record<string, string>; body: string; path?: string; meta?: unknown };
  onResponse?: (status: number, body: string, meta: unknown) => void;
}

export async function load(opts: LoadOptions): Promise<LoadResult> {
  const instance = autocannon({
    url: opts.url,
    connections: opts.connections ?? 50,
    ...(opts.amount ? { amount: opts.amount } : { duration: opts.durationS ?? 10 }),
    ...(opts.overallRate ? { overallRate: opts.overallRate } : {}),
    method: 'POST',
    requests: [
      {
        setupRequest: (req, context) => {
          const n = opts.next();
          (context as Record<string, unknown>).last = n;
          return {
            ...req,
            method: 'POST',
            path: n.path ?? opts.path,
            headers: n.headers,
            body: n.body,
          };
        },
        onResponse: (status, body, context) => {
          const last = (context as Record<string, unknown>).last as { meta?: unknown };
          opts.onResponse?.(status, body, last.meta);
        },
      },
    ],
  });
  const result = await instance;
  const statusCounts: Record<string, number> = {};
  for (const [code, s] of Object.entries(result.statusCodeStats ?? {}))
    statusCounts[code] = (s as { count: number }).count;
  return {
    requests: result.requests.total,
    durationS: result.duration,
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    p999: result.latency.p99_9 ?? result.latency.p99,
    statusCounts,
    errors: result.errors + result.timeouts,
  };
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** The PostgreSQL-only baseline's tables (bench_pg_*), made by whichever bench needs them. */
export const PG_BASELINE_TABLES = [
  'CREATE TABLE IF NOT EXISTS bench_pg_skus (id text PRIMARY KEY, available int NOT NULL CHECK (available >= 0))',
  'CREATE TABLE IF NOT EXISTS bench_pg_orders (id bigserial PRIMARY KEY, sku_id text NOT NULL, user_id text NOT NULL, quantity int NOT NULL, idempotency_key text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
];

export interface PurchaseRequest {
  sku: string;
  userId: string;
  quantity: number;
  idempotencyKey: string;
}

/**
 * The bench's own baseline servers: a bare node:http server that reads
 * POST /v1/skus/{sku}/purchases (user in x-user), answers what `handle` returns as JSON,
 * listens on PORT, announces its URL for startServer, and stops on SIGTERM.
 */
export function servePurchases(
  handle: (p: PurchaseRequest) => Promise<{ status: number; body: unknown }>,
  close: () => Promise<unknown>,
): void {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { quantity } = JSON.parse(Buffer.concat(chunks).toString()) as { quantity: number };
      const request = {
        sku: (req.url ?? '').split('/')[3] ?? '',
        userId: String(req.headers['x-user']),
        quantity,
        idempotencyKey: String(req.headers['idempotency-key']),
      };
      void handle(request).then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
  });
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    const a = server.address();
    console.log(`listening http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`);
  });
  process.on('SIGTERM', () => {
    server.close();
    void close().then(() => process.exit(0));
  });
}
