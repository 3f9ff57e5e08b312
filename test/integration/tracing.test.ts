// One purchase, traced end to end across three processes: the API (HTTP server span and
// the Redis script's span), the relay (Kafka publish) and the writer (Kafka process and the
// PostgreSQL transaction), all in the trace the caller's traceparent started, and sent as
// OTLP/JSON over HTTP to a receiver this test runs. Tracing is configured by OTEL_*
// variables only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { testConfig, token, uid, until } from '../helpers.js';
import { spawnRoles, stopProc, type Proc } from '../support/processes.js';
import { startTracing, stopTracing, tracer, tracingRequested } from '../../src/shared/tracing.js';
import { createLogger } from '../../src/shared/log.js';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  role: string;
  attributes: Record<string, unknown>;
}

/** OTLP/JSON ids are hex; some encoders send base64. */
const hex = (id: unknown): string =>
  typeof id !== 'string' || id === ''
    ? ''
    : /^[0-9a-f]+$/.test(id)
      ? id
      : Buffer.from(id, 'base64').toString('hex');

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpRequest {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: OtlpAttribute[];
      }[];
    }[];
  }[];
}

const attrs = (list: OtlpAttribute[] = []) =>
  Object.fromEntries(
    list.map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.boolValue]),
  );

/** A minimal OTLP/HTTP trace receiver (JSON bodies only). */
async function otlpReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url !== '/v1/traces' || !req.headers['content-type']?.includes('json')) {
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString()) as OtlpRequest;
      for (const rs of body.resourceSpans ?? []) {
        const role = String(attrs(rs.resource?.attributes)['flashsale.role'] ?? '');
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? [])
            spans.push({
              traceId: hex(s.traceId),
              spanId: hex(s.spanId),
              parentSpanId: hex(s.parentSpanId),
              name: s.name,
              kind: s.kind,
              role,
              attributes: attrs(s.attributes),
            });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, spans, server };
}

// OTLP span kinds (the protobuf enum, as the JSON encoding numbers them).
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

describe('tracing with OTEL_* set', () => {
  let rx: Awaited<ReturnType<typeof otlpReceiver>>;
  const procs: Proc[] = [];
  before(async () => {
    rx = await otlpReceiver();
  });
  after(async () => {
    await Promise.all(procs.map((p) => stopProc(p)));
    await new Promise<void>((r) => rx?.server.close(() => r()));
  });

  it('follows one purchase from HTTP through Redis, the relay, Kafka and the writer to PostgreSQL', async () => {
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    };
    const api = spawnRoles('tracing-api', ['api'], otel);
    procs.push(
      api,
      spawnRoles('tracing-relay', ['relay'], otel),
      spawnRoles('tracing-writer', ['writer'], otel),
    );
    const url = await api.url;
    const cfg = testConfig();
    const sku = uid('traced');
    const created = await fetch(`${url}/v1/admin/skus`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cfg.ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sku, name: sku, stock: 5, perUserLimit: 5 }),
    });
    assert.equal(created.status, 201);

    // The caller's own trace: the engine's spans must join it.
    const traceId = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const bought = await fetch(`${url}/v1/skus/${sku}/purchases`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await token('traced-buyer')}`,
        'idempotency-key': uid('k'),
        'content-type': 'application/json',
        traceparent: `00-${traceId}-${callerSpan}-01`,
      },
      body: JSON.stringify({ quantity: 1 }),
    });
    assert.equal(bought.status, 201);
    const { orderId } = (await bought.json()) as { orderId: string };

    const find = (kind: number, name: RegExp) =>
      rx.spans.find((s) => s.traceId === traceId && s.kind === kind && name.test(s.name));
    const chain = await until(
      'the five spans of the purchase',
      () => {
        const http = find(SERVER, /purchases/);
        const redis = find(CLIENT, /^redis/);
        const publish = find(PRODUCER, /^publish/);
        const process = find(CONSUMER, /^process/);
        const pg = find(CLIENT, /^postgresql/);
        return http && redis && publish && process && pg
          ? { http, redis, publish, process, pg }
          : undefined;
      },
      30_000,
    );
    const { http, redis, publish, process, pg } = chain;
    // One chain of parents, each hop in the process that made it.
    assert.equal(http.parentSpanId, callerSpan);
    assert.equal(redis.parentSpanId, http.spanId);
    assert.equal(publish.parentSpanId, redis.spanId);
    assert.equal(process.parentSpanId, publish.spanId);
    assert.equal(pg.parentSpanId, process.spanId);
    assert.deepEqual(
      [http.role, redis.role, publish.role, process.role, pg.role],
      ['api', 'api', 'relay', 'writer', 'writer'],
    );
    assert.equal(http.attributes['http.response.status_code'], 201);
    assert.equal(redis.attributes['db.system.name'], 'redis');
    assert.equal(redis.attributes['flashsale.order_id'], orderId);
    assert.equal(publish.attributes['messaging.system'], 'kafka');
    assert.equal(pg.attributes['db.system.name'], 'postgresql');
  });
});

describe('tracing settings', () => {
  it('is off unless an OTLP endpoint is set, and off when disabled', () => {
    assert.equal(tracingRequested({}), false);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), true);
    assert.equal(
      tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }),
      true,
    );
    assert.equal(
      tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }),
      false,
    );
    assert.equal(
      tracingRequested({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_TRACES_EXPORTER: 'none',
      }),
      false,
    );
  });

  it('refuses a protocol or exporter it cannot honour, by name', () => {
    assert.throws(
      () =>
        tracingRequested({
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        }),
      /OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported/,
    );
    assert.throws(
      () =>
        tracingRequested({
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
          OTEL_TRACES_EXPORTER: 'zipkin',
        }),
      /OTEL_TRACES_EXPORTER=zipkin/,
    );
  });

  it('puts the trace id on log lines written inside a span', async () => {
    assert.equal(tracer(), undefined, 'off until started');
    const rx = await otlpReceiver();
    try {
      assert.equal(startTracing('test', { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url }), true);
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      });
      const log = createLogger('info', 'test', sink);
      const span = tracer()!.startSpan('probe');
      context.with(trace.setSpan(context.active(), span), () => log.info('inside'));
      span.end();
      log.info('outside');
      const [inside, outside] = lines.map((l) => JSON.parse(l) as { traceId?: string });
      assert.equal(inside?.traceId, span.spanContext().traceId);
      assert.equal(outside?.traceId, undefined);
    } finally {
      await stopTracing();
      await new Promise<void>((r) => rx.server.close(() => r()));
    }
  });
});
