// `watch`: one frame of a sale in the terminal, from a snapshot of GET /v1/admin/live. Pure
// (snapshot in, lines out), so what an operator sees is unit-tested without an engine.
import { count, table } from './format.js';

export interface LiveSku {
  sku: string;
  name: string | null;
  supplied: number | null;
  available: number | null;
  paused: boolean | null;
  startsAt: string | null;
  endsAt: string | null;
  soldPerSecond: number | null;
  unitsReserved: number | null;
  /** Refused purchases by error code, e.g. { SOLD_OUT: 120 }. */
  refusals: Record<string, number> | null;
  expiringNext60s: number | null;
}

export interface LiveSnapshot {
  at: string | null;
  skus: LiveSku[];
  pipeline: {
    streamEntries: number | null;
    consumerLag: number | null;
    relayLagSeconds: number | null;
  };
  incidents: { open: number | null };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const instant = (v: unknown): string | null =>
  typeof v === 'number' && Number.isFinite(v) ? new Date(v).toISOString() : str(v);

/**
 * The route's JSON as a snapshot: any figure it does not give (or gives as null) is null,
 * so a route that grows or lacks a field still renders. Throws when it is not that route's
 * shape at all.
 */
export function readLiveSnapshot(body: unknown): LiveSnapshot {
  const b = obj(body);
  if (!Array.isArray(b.skus)) throw new Error('the answer has no "skus" list');
  const pipeline = obj(b.pipeline);
  return {
    at: instant(b.at),
    skus: b.skus.map((raw): LiveSku => {
      const s = obj(raw);
      const refusals = obj(s.refusals);
      return {
        sku: str(s.sku) ?? '?',
        name: str(s.name),
        supplied: num(s.supplied),
        available: num(s.available),
        paused: typeof s.paused === 'boolean' ? s.paused : null,
        startsAt: instant(s.startsAt),
        endsAt: instant(s.endsAt),
        soldPerSecond: num(s.soldPerSecond),
        unitsReserved: num(s.unitsReserved),
        refusals:
          s.refusals === null || s.refusals === undefined
            ? null
            : Object.fromEntries(
                Object.entries(refusals).flatMap(([code, n]) => {
                  const v = num(n);
                  return v === null ? [] : [[code, v]];
                }),
              ),
        expiringNext60s: num(s.expiringNext60s),
      };
    }),
    pipeline: {
      streamEntries: num(pipeline.streamEntries),
      consumerLag: num(pipeline.consumerLag),
      relayLagSeconds: num(pipeline.relayLagSeconds),
    },
    incidents: { open: num(obj(b.incidents).open) },
  };
}

/** What a buyer would be told now, judged at the snapshot's own time. */
export function saleStatus(s: LiveSku, at: string | null): string {
  if (s.paused) return 'paused';
  const now = at ? Date.parse(at) : NaN;
  if (s.startsAt && now < Date.parse(s.startsAt)) return 'scheduled';
  if (s.endsAt && now >= Date.parse(s.endsAt)) return 'ended';
  if (s.available === 0) return 'sold out';
  if (s.available === null) return '?';
  return 'active';
}

const rate = (v: number | null) =>
  v === null ? '-' : v < 100 ? v.toFixed(1) : count(Math.round(v));
const seconds = (v: number | null) =>
  v === null ? '-' : `${v < 10 ? v.toFixed(1) : count(Math.round(v))} s`;
const NAME_WIDTH = 24;
const clip = (s: string) => (s.length > NAME_WIDTH ? `${s.slice(0, NAME_WIDTH - 1)}…` : s);

export interface FrameOptions {
  /** The SKUs asked for: only these are shown, and any the snapshot lacks is named. */
  skus?: string[];
  /** Where the snapshot came from, for the title line. */
  source?: string;
  /** A last line, e.g. how to stop, or why the frame is old. */
  footer?: string;
}

/** One frame: a title, a row per SKU with its refusals under it, the pipeline, incidents. */
export function renderLive(snap: LiveSnapshot, opts: FrameOptions = {}): string[] {
  const asked = opts.skus?.length ? new Set(opts.skus) : undefined;
  const skus = asked ? snap.skus.filter((s) => asked.has(s.sku)) : snap.skus;
  const missing = [...(asked ?? [])].filter((id) => !skus.some((s) => s.sku === id));
  const lines = [
    ['flashsale live', snap.at ?? 'time unknown', opts.source].filter(Boolean).join('  '),
    '',
  ];
  if (skus.length === 0) {
    if (!asked) lines.push('no SKUs yet');
  } else {
    const header = [
      'SKU',
      'NAME',
      'STATUS',
      'LEFT',
      'SUPPLIED',
      'SOLD/S',
      'RESERVED',
      'EXPIRE<60S',
      'REFUSED',
    ];
    const rows: string[][] = [];
    const notes = new Map<number, string>();
    for (const s of skus) {
      const refusals = Object.entries(s.refusals ?? {})
        .filter(([, n]) => n > 0)
        .sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
      const refused = refusals.reduce((sum, [, n]) => sum + n, 0);
      if (refusals.length > 0)
        notes.set(
          rows.length + 1,
          `refused: ${refusals.map(([code, n]) => `${code} ${count(n)}`).join(', ')}`,
        );
      rows.push([
        s.sku,
        clip(s.name ?? '-'),
        saleStatus(s, snap.at),
        count(s.available),
        count(s.supplied),
        rate(s.soldPerSecond),
        count(s.unitsReserved),
        count(s.expiringNext60s),
        s.refusals === null ? '-' : count(refused),
      ]);
    }
    const rendered = table(
      [header, ...rows],
      [false, false, false, true, true, true, true, true, true],
    );
    const indent = ' '.repeat(2);
    rendered.forEach((line, i) => {
      lines.push(line);
      const note = notes.get(i);
      if (note) lines.push(`${indent}${note}`);
    });
    if (skus.length > 1) {
      const sold = skus.reduce<number | null>(
        (sum, s) => (sum === null || s.soldPerSecond === null ? null : sum + s.soldPerSecond),
        0,
      );
      lines.push(`${indent}${skus.length} SKUs shown, ${rate(sold)} sold/s together`);
    }
  }
  for (const id of missing) lines.push(`${id}: not in the live view (no such SKU?)`);
  const p = snap.pipeline;
  const open = snap.incidents.open;
  lines.push(
    '',
    `pipeline   stream entries ${count(p.streamEntries)}, writer lag ${count(p.consumerLag)} events, relay lag ${seconds(p.relayLagSeconds)}`,
    `incidents  ${open === null ? '-' : count(open)} open${open ? ' (flashsale-admin alerts --open)' : ''}`,
  );
  if (opts.footer) lines.push('', opts.footer);
  return lines;
}
