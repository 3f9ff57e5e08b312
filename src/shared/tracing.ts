// OpenTelemetry tracing, off by default and configured only by the standard OTEL_*
// variables: on when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and neither OTEL_SDK_DISABLED=true nor
// OTEL_TRACES_EXPORTER=none says otherwise. Spans leave as OTLP over HTTP with JSON bodies.
//
// Off, it costs the hot path one check of `tracer()` per request and nothing else: no
// span objects, no context switches, no traceparent in the stored event.
//
// A purchase's trace crosses processes in the data itself: the purchase script writes the
// traceparent of its Redis span into the stock event, the relay publishes with its own
// span's traceparent as a Kafka header, and the writer's spans continue from that header.
import {
  context,
  propagation,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';

/** W3C traceparent, version 00: the only form the engine writes into events and headers. */
export const TRACEPARENT_PATTERN = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The OTLP protocols this build exports with (the http/json exporter). */
const SUPPORTED_PROTOCOLS = new Set(['http/json']);

export class TracingConfigError extends Error {}

/** Whether the OTEL_* variables ask for traces. Throws for a setting this build cannot honour. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((e) => e.trim());
  if (exporters.includes('none')) return false;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return false;
  const unknownExporter = exporters.find((e) => e !== '' && e !== 'otlp');
  if (unknownExporter)
    throw new TracingConfigError(
      `OTEL_TRACES_EXPORTER=${unknownExporter} is not supported; use otlp (or none)`,
    );
  const protocol = (
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ||
    env.OTEL_EXPORTER_OTLP_PROTOCOL ||
    'http/json'
  ).trim();
  if (!SUPPORTED_PROTOCOLS.has(protocol))
    throw new TracingConfigError(
      `OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported; use http/json`,
    );
  return true;
}

/** OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, as the specification names them. */
export function samplerFrom(env: NodeJS.ProcessEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER || 'parentbased_always_on').trim().toLowerCase();
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const ratio = () => {
    const r = arg === undefined || arg === '' ? 1 : Number(arg);
    if (!(r >= 0 && r <= 1))
      throw new TracingConfigError(`OTEL_TRACES_SAMPLER_ARG=${arg} must be a ratio from 0 to 1`);
    return new TraceIdRatioBasedSampler(r);
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    default:
      throw new TracingConfigError(`OTEL_TRACES_SAMPLER=${name} is not supported`);
  }
}

/** A positive whole number from an OTEL_BSP_* variable, or undefined for the default. */
function bspSetting(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new TracingConfigError(`${name}=${raw} must be a positive whole number`);
  return n;
}

let active: { tracer: Tracer; provider: TracerProvider } | undefined;

/** The engine's tracer while tracing is on; undefined (and nothing to do) when it is off. */
export function tracer(): Tracer | undefined {
  return active?.tracer;
}

/**
 * Starts tracing for this process when the OTEL_* variables ask for it. The service is
 * named `flashsale` unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise;
 * `flashsale.role` tells the engine's processes apart.
 */
export function startTracing(role: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (active || !tracingRequested(env)) return false;
  const resource = resourceFromAttributes({
    'service.name': 'flashsale',
    'flashsale.role': role,
  }).merge(detectResources({ detectors: [envDetector] }));
  const processor = new BatchSpanProcessor({
    exporter: new OTLPTraceExporter(),
    scheduledDelayMillis: bspSetting(env, 'OTEL_BSP_SCHEDULE_DELAY'),
    maxQueueSize: bspSetting(env, 'OTEL_BSP_MAX_QUEUE_SIZE'),
    maxExportBatchSize: bspSetting(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    exportTimeoutMillis: bspSetting(env, 'OTEL_BSP_EXPORT_TIMEOUT'),
  });
  const provider = new TracerProvider({
    resource,
    sampler: samplerFrom(env),
    spanProcessors: [processor],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  active = { tracer: provider.getTracer('flashsale-engine'), provider };
  return true;
}

/** Sends the spans still buffered, then stops (bounded: an unreachable collector loses them). */
export async function stopTracing(timeoutMs = 3000): Promise<void> {
  const a = active;
  if (!a) return;
  active = undefined;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    a.provider.shutdown().catch(() => undefined),
    new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
  ]);
  clearTimeout(timer);
}

/** The W3C traceparent of a span, for an event or a message header. */
export function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 1).toString(16).padStart(2, '0')}`;
}

/** The context a traceparent continues (the active context when there is none). */
export function contextFrom(traceparent: string | undefined): Context {
  if (!traceparent || !TRACEPARENT_PATTERN.test(traceparent)) return context.active();
  return propagation.extract(context.active(), { traceparent });
}

/** The trace id to put on a log line, when a span is active. */
export function activeTraceId(): string | undefined {
  if (!active) return undefined;
  const span = trace.getSpan(context.active());
  return span?.spanContext().traceId;
}
