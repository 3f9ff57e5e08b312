// The headline figures of a bench run (issue "The hot path and the pipeline at their
// limits"), each the median of the runs with its spread, as JSON, a Markdown table and an
// SVG chart that show the same numbers.
import { fmt } from './lib.js';

export interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** req/s of one purchase-bench variant over another's, from one run (undefined: not run). */
function purchaseRatio(
  run: Record<string, any>,
  top: (variant: string) => boolean,
  bottom: (variant: string) => boolean,
): number | undefined {
  const p = run.purchase as { variant: string; result: { rps: number } }[] | undefined;
  const a = p?.find((v) => top(v.variant))?.result.rps;
  const b = p?.find((v) => bottom(v.variant))?.result.rps;
  return a && b ? a / b : undefined;
}

/** What each figure means and how it is read from one run's JSON (undefined: not run). */
const FIGURES: {
  key: string;
  label: string;
  digits: number;
  read: (run: Record<string, any>) => number | undefined;
}[] = [
  {
    key: 'routeToCeiling',
    label: 'purchase route, engine API / bare node:http ceiling',
    digits: 2,
    read: (r) =>
      purchaseRatio(
        r,
        (v) => v === 'engine API',
        (v) => v.startsWith('ceiling:'),
      ),
  },
  {
    key: 'admissionOnToOff',
    label: 'purchase route, admission control on / off',
    digits: 2,
    read: (r) =>
      purchaseRatio(
        r,
        (v) => v === 'engine API, admission control on',
        (v) => v === 'engine API',
      ),
  },
  {
    key: 'admissionCpuOnToOff',
    label: 'server CPU per purchase (API + Redis), admission control on / off',
    digits: 2,
    read: (r) => {
      const p = r.purchase as
        { variant: string; cpuUsPerRequest?: { api: number; redis: number } }[] | undefined;
      const cpu = (name: string) => {
        const c = p?.find((v) => v.variant === name)?.cpuUsPerRequest;
        return c ? c.api + c.redis : undefined;
      };
      const on = cpu('engine API, admission control on');
      const off = cpu('engine API');
      return on && off ? on / off : undefined;
    },
  },
  {
    key: 'firstSightPassesUs',
    label: "CPU µs to verify a buyer's two passes the first time (admission on)",
    digits: 1,
    read: (r) => (r.firstSight as { passesUs: number } | undefined)?.passesUs,
  },
  {
    key: 'hotSkuToCeiling',
    label: 'hot SKU with the pipeline running / ceiling',
    digits: 2,
    read: (r) => {
      const s = r.scenarios as { scenario: string; server: string; result: { rps: number } }[];
      const ceiling = s?.find((x) => x.server.startsWith('ceiling'))?.result.rps;
      const hot = s?.find((x) => x.server === 'engine' && x.scenario === 'hot SKU')?.result.rps;
      return ceiling && hot ? hot / ceiling : undefined;
    },
  },
  {
    key: 'hotSkuPurchasesPerScriptCall',
    label: 'hot SKU: purchases per purchase-script call',
    digits: 1,
    read: (r) => {
      const s = r.scenarios as {
        scenario: string;
        server: string;
        purchasesPerScriptCall?: number;
      }[];
      return s?.find((x) => x.server === 'engine' && x.scenario === 'hot SKU')
        ?.purchasesPerScriptCall;
    },
  },
  {
    key: 'redisUsPerPurchase',
    label: 'Redis time per purchase (µs)',
    digits: 1,
    read: (r) => r.cost?.singleNode.redisUsPerPurchase,
  },
  {
    key: 'redisUsPerPurchaseAlone',
    label: 'Redis time per purchase, each in a call of its own (µs)',
    digits: 1,
    read: (r) => r.cost?.alone?.redisUsPerPurchase,
  },
  {
    key: 'redisUsPerPurchaseBuyerLimit',
    label: 'Redis time per purchase, default buyer limit on (µs)',
    digits: 1,
    read: (r) => r.cost?.buyerLimit?.redisUsPerPurchase,
  },
  {
    key: 'redisUsPerPurchaseToLean',
    label: 'Redis time per purchase / a lean five-command script',
    digits: 2,
    read: (r) => r.cost?.redisUsPerPurchaseToLean,
  },
  {
    key: 'redisUsPerPurchaseToGoal',
    label: "Redis time per purchase / issue 13's goal scaled to this machine (at most 1 meets it)",
    digits: 2,
    read: (r) => r.cost?.redisUsPerPurchaseToGoal,
  },
  {
    key: 'redisUsPerPurchaseAloneToGoal',
    label: "the same, each purchase in a call of its own (at most 1 meets issue 13's goal)",
    digits: 2,
    read: (r) => r.cost?.redisUsPerPurchaseAloneToGoal,
  },
  {
    key: 'redisInstructionsPerPurchase',
    label: 'redis-server instructions per purchase (callgrind)',
    digits: 0,
    read: (r) => r.cost?.instructionsPerPurchase,
  },
  {
    key: 'redisInstructionsPerPurchaseAlone',
    label: 'redis-server instructions per purchase, each in a call of its own (callgrind)',
    digits: 0,
    read: (r) => r.cost?.instructionsPerPurchaseAlone,
  },
  {
    key: 'redisInstructionsAdmissionOnToOff',
    label: 'redis-server instructions per purchase, admission control on / buyer limit only',
    digits: 2,
    read: (r) => {
      const on = r.cost?.instructionsPerPurchaseAdmission;
      const off = r.cost?.instructionsPerPurchaseBuyerLimit;
      return on && off ? on / off : undefined;
    },
  },
  {
    key: 'redisRoundTripsPerPurchase',
    label: 'Redis round trips per new purchase',
    digits: 2,
    read: (r) => r.cost?.singleNode.redisRoundTripsPerPurchase,
  },
  {
    key: 'purchasesPerScriptCall',
    label: 'purchases per purchase-script call (cost bench, 50 in flight)',
    digits: 1,
    read: (r) => r.cost?.singleNode.purchasesPerScriptCall,
  },
  {
    key: 'perSkuCapacityVsPg',
    label: 'per-SKU capacity / PostgreSQL hot row',
    digits: 1,
    read: (r) => r.cost?.perSkuCapacityVsPg,
  },
  {
    key: 'lagRate',
    label: 'lag load (purchases/s)',
    digits: 0,
    read: (r) => r.pipeline?.lag.purchasesPerS,
  },
  {
    key: 'lagP50Ms',
    label: 'lag to PostgreSQL p50 (ms)',
    digits: 0,
    read: (r) => r.pipeline?.lag.lagP50Ms,
  },
  {
    key: 'lagP99Ms',
    label: 'lag to PostgreSQL p99 (ms)',
    digits: 0,
    read: (r) => r.pipeline?.lag.lagP99Ms,
  },
  {
    key: 'cpuUsPerPurchaseEngine',
    label: 'CPU µs per purchase, every engine process',
    digits: 0,
    read: (r) => r.pipeline?.lag.cpuUsPerPurchase.total,
  },
  {
    key: 'cpuUsPerPurchasePgOnly',
    label: 'CPU µs per purchase, PostgreSQL-only baseline',
    digits: 0,
    read: (r) => r.pipeline?.pgOnly.cpuUsPerPurchase.total,
  },
  {
    key: 'bytesPerOrder',
    label: 'Redis bytes per order',
    digits: 0,
    read: (r) => r.memory?.bytesPerOrder,
  },
  {
    key: 'bytesPerRefusedAttempt',
    label: 'Redis bytes per refused attempt',
    digits: 0,
    read: (r) => r.memory?.bytesPerRefusedAttempt,
  },
  {
    key: 'expirationsPerSecond',
    label: 'expirations per second',
    digits: 0,
    read: (r) => r.expiry?.expirationsPerSecond,
  },
];

export function summarize(runs: Record<string, unknown>[]): Record<string, Figure> {
  const out: Record<string, Figure> = {};
  for (const f of FIGURES) {
    const values = runs.map((r) => f.read(r)).filter((v): v is number => typeof v === 'number');
    if (values.length === 0) continue;
    const sorted = [...values].sort((a, b) => a - b);
    out[f.key] = {
      median: sorted[Math.floor(sorted.length / 2)]!,
      min: sorted[0]!,
      max: sorted[sorted.length - 1]!,
      runs: values,
    };
  }
  return out;
}

const described = (summary: Record<string, Figure>) =>
  FIGURES.filter((f) => summary[f.key]).map((f) => ({ ...f, fig: summary[f.key]! }));

export function summaryTable(summary: Record<string, Figure>): string {
  return [
    '| figure | key | median | spread (min – max) | runs |',
    '| --- | --- | --- | --- | --- |',
    ...described(summary).map(
      ({ key, label, digits, fig }) =>
        `| ${label} | \`${key}\` | ${fmt(fig.median, digits)} | ${fmt(fig.min, digits)} – ${fmt(fig.max, digits)} | ${fig.runs.map((v) => fmt(v, digits)).join(', ')} |`,
    ),
  ].join('\n');
}

/** One row per figure: its median, and a bar from min to max on a scale of 0 to 2x median. */
export function summaryChart(summary: Record<string, Figure>, runs: number): string {
  const rows = described(summary);
  const left = 360;
  const barW = 300;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const body = rows.map(({ label, digits, fig }, i) => {
    const y = 50 + i * 28;
    const scale = (v: number) => (fig.median > 0 ? Math.min(2, v / fig.median) : 1) * (barW / 2);
    const x0 = left + scale(fig.min);
    const x1 = left + scale(fig.max);
    return [
      `<text x="${left - 10}" y="${y + 14}" text-anchor="end" font-size="12">${esc(label)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${barW}" height="12" fill="#eef1f6"/>`,
      `<rect x="${x0.toFixed(1)}" y="${y + 4}" width="${Math.max(2, x1 - x0).toFixed(1)}" height="12" fill="#9db7e8"/>`,
      `<rect x="${(left + barW / 2 - 1).toFixed(1)}" y="${y}" width="2" height="20" fill="#2f6fdf"/>`,
      `<text x="${left + barW + 10}" y="${y + 14}" font-size="12">${fmt(fig.median, digits)} (${fmt(fig.min, digits)} – ${fmt(fig.max, digits)})</text>`,
    ].join('');
  });
  const height = 70 + rows.length * 28;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="${height}" font-family="sans-serif"><text x="10" y="24" font-size="15" font-weight="bold">Headline figures: median of ${runs} run${runs > 1 ? 's' : ''} (line), spread min to max (band; scale 0 to 2x median)</text>${body.join('')}</svg>\n`;
}
