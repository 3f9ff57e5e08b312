// What the admin commands print for a person: pure functions from the API's answers to
// lines. (`--json` skips all of this and prints the answer as it came.)

/** The answer shapes the commands read (see the route table in src/http/ and /openapi.json). */
export interface CreatedSku {
  sku: string;
  name: string;
  stock: number;
  available: number;
  perUserLimit: number;
  startsAt: string | null;
  endsAt: string | null;
  reservationTtlSeconds: number;
  waitingRoom: Admission['waitingRoom'];
  qualificationRequired: boolean;
  rateLimit: Admission['rateLimit'];
}
export interface PublicSku {
  sku: string;
  available: number;
  status: string;
  startsAt: string | null;
  endsAt: string | null;
  waitingRoom: boolean;
  qualificationRequired: boolean;
}
export interface Comparison {
  sku: string;
  redis: { available: number; supplied: number; sequence: number } | null;
  db: { available: number; supplied: number; sequence: number; heldByLiveOrders: number };
  lag: number | null;
  drift: number | null;
  conservationGap: number;
}
export interface Restocked {
  sku: string;
  available: number;
  totalSupplied: number;
  sequence: number;
}
export interface PauseResult {
  sku: string;
  paused: boolean;
  changed: boolean;
}
export interface Repaired {
  sku: string;
  sequence: number;
  available: number;
}
export interface PassReport {
  at: string;
  skus: number;
  findings: { sku: string; kind: string }[];
  opened: { sku: string; kind: string }[];
  resolved: { sku: string; kind: string }[];
  led: boolean;
}
export interface Incident {
  id: string;
  sku: string;
  kind: string;
  status: string;
  firstSeenAt: string;
  lastSeenAt: string;
  resolvedAt: string | null;
  redis: { available: number | null; sequence: number | null };
  db: { available: number | null; sequence: number | null };
}
export interface Admission {
  sku: string;
  waitingRoom: {
    admissionsPerSecond: number | null;
    admissionsPerUnitLeft: number | null;
    admissionTtlSeconds: number;
  } | null;
  qualificationRequired: boolean;
  rateLimit: {
    buyerPerSecond?: number;
    buyerBurst?: number;
    clientPerSecond?: number;
    clientBurst?: number;
  } | null;
}
export interface Alerts {
  open: Incident[];
  recent: Incident[];
}

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
/** A whole number with thousands separators; '-' when unknown. */
export const count = (n: number | null | undefined): string =>
  n === null || n === undefined ? '-' : grouped.format(n);

const plural = (n: number, one: string, many = `${one}s`) => `${count(n)} ${n === 1 ? one : many}`;

/** Columns padded to their widest cell, two spaces apart; `right[i]` aligns column i right. */
export function table(rows: string[][], right: boolean[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (right[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** `label  value` lines under a title, labels padded to one width. */
function fields(title: string, pairs: [string, string][]): string[] {
  return [title, ...table(pairs).map((l) => `  ${l}`)];
}

function window(startsAt: string | null, endsAt: string | null): string {
  return `${startsAt ?? 'open now'} -> ${endsAt ?? 'no end'}`;
}

const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });

function limit(perSecond: number | undefined, burst: number | undefined): string {
  if (perSecond === undefined || burst === undefined) return "the deployment's";
  if (perSecond === 0) return "none (the deployment's lifted)";
  return `${decimal.format(perSecond)}/s, burst ${count(burst)}`;
}

/** A SKU's admission settings as `label  value` pairs. */
function admissionPairs(a: Omit<Admission, 'sku'>): [string, string][] {
  const w = a.waitingRoom;
  const pace = w
    ? [
        w.admissionsPerSecond === null
          ? ''
          : `${decimal.format(w.admissionsPerSecond)} admissions/s`,
        w.admissionsPerUnitLeft === null
          ? ''
          : `at most ${decimal.format(w.admissionsPerUnitLeft)} outstanding per unit left`,
      ].filter((p) => p)
    : [];
  return [
    [
      'waiting room',
      w ? `on: ${pace.join(', ')}; passes last ${count(w.admissionTtlSeconds)} s` : 'off',
    ],
    ['qualification', a.qualificationRequired ? 'required' : 'not required'],
    ['buyer limit', limit(a.rateLimit?.buyerPerSecond, a.rateLimit?.buyerBurst)],
    ['client limit', limit(a.rateLimit?.clientPerSecond, a.rateLimit?.clientBurst)],
  ];
}

/** A SKU's admission settings; `changed` after the command set them. */
export function formatAdmission(a: Admission, changed: boolean): string[] {
  return fields(changed ? `admission of ${a.sku} set` : `${a.sku} admission`, admissionPairs(a));
}

export function formatCreated(b: CreatedSku, replayed: boolean): string[] {
  return fields(
    replayed ? `${b.sku} already exists with this definition: nothing changed` : `created ${b.sku}`,
    [
      ['name', b.name],
      ['stock', `${count(b.stock)} (available ${count(b.available)})`],
      ['per-user limit', count(b.perUserLimit)],
      ['sale', window(b.startsAt, b.endsAt)],
      ['reservations', `held ${count(b.reservationTtlSeconds)} s`],
      // Only when the SKU has admission settings: most SKUs have none.
      ...(b.waitingRoom || b.qualificationRequired || b.rateLimit ? admissionPairs(b) : []),
    ],
  );
}

function comparisonFields(c: Comparison): [string, string][] {
  const r = c.redis;
  return [
    [
      'redis',
      r
        ? `available ${count(r.available)}, supplied ${count(r.supplied)}, sequence ${count(r.sequence)}`
        : 'state missing (rebuilt from PostgreSQL on next use)',
    ],
    [
      'postgresql',
      `available ${count(c.db.available)}, supplied ${count(c.db.supplied)}, sequence ${count(c.db.sequence)}, held by live orders ${count(c.db.heldByLiveOrders)}`,
    ],
    [
      'lag',
      c.lag === null
        ? '-'
        : c.lag < 0
          ? `PostgreSQL ahead by ${plural(-c.lag, 'event')}`
          : plural(c.lag, 'event'),
    ],
    ['drift', c.drift === null ? '- (sequences differ)' : count(c.drift)],
    ['conservation', c.conservationGap === 0 ? 'ok' : `gap ${count(c.conservationGap)}`],
  ];
}

export function formatShow(v: PublicSku, c: Comparison): string[] {
  const supplied = c.redis?.supplied ?? c.db.supplied;
  return fields(`${v.sku}  ${v.status.replace('_', ' ')}`, [
    ['available', `${count(v.available)} of ${count(supplied)} supplied`],
    ['sale', window(v.startsAt, v.endsAt)],
    [
      'buyers',
      [
        v.waitingRoom ? 'join the waiting room' : 'buy directly',
        ...(v.qualificationRequired ? ['with a Qualification-Token'] : []),
      ].join(' '),
    ],
    ...comparisonFields(c),
  ]);
}

export function formatComparison(c: Comparison): string[] {
  const agree = c.lag === 0 && c.drift === 0 && c.conservationGap === 0;
  return fields(
    `${c.sku}: ${agree ? 'Redis and PostgreSQL agree' : 'Redis vs PostgreSQL'}`,
    comparisonFields(c),
  );
}

export function formatRestocked(b: Restocked, quantity: number): string[] {
  return [
    `restocked ${b.sku} by ${count(quantity)}: available ${count(b.available)}, supplied ${count(b.totalSupplied)} (sequence ${count(b.sequence)})`,
  ];
}

export function formatPaused(b: PauseResult): string[] {
  if (b.changed) return [`${b.paused ? 'paused' : 'resumed'} ${b.sku}`];
  return [`${b.sku} was already ${b.paused ? 'paused' : 'running'}: nothing changed`];
}

export function formatRepaired(b: Repaired): string[] {
  return [
    `repaired ${b.sku} from PostgreSQL: available ${count(b.available)} (sequence ${count(b.sequence)})`,
  ];
}

export function formatPass(r: PassReport): string[] {
  const lines = [
    `reconciliation pass at ${r.at}: ${plural(r.skus, 'SKU')} compared, ${plural(r.findings.length, 'finding')}, ${count(r.opened.length)} opened, ${count(r.resolved.length)} resolved`,
  ];
  const rows = [
    ...r.findings.map((f) => ['finding', f.kind, f.sku]),
    ...r.opened.map((f) => ['opened', f.kind, f.sku]),
    ...r.resolved.map((f) => ['resolved', f.kind, f.sku]),
  ];
  lines.push(...table(rows).map((l) => `  ${l}`));
  if (!r.led)
    lines.push('  (another instance leads the reconciler: this pass opened and resolved nothing)');
  return lines;
}

const side = (s: { available: number | null; sequence: number | null }) =>
  `${count(s.available)} @ seq ${count(s.sequence)}`;

export function formatAlerts(a: Alerts, openOnly: boolean): string[] {
  const lines = [
    a.open.length === 0 ? 'no open incidents' : `open incidents (${count(a.open.length)})`,
    ...table(
      a.open.map((i) => [
        i.kind,
        i.sku,
        `since ${i.firstSeenAt}`,
        `last seen ${i.lastSeenAt}`,
        `redis ${side(i.redis)}, postgresql ${side(i.db)}`,
      ]),
    ).map((l) => `  ${l}`),
  ];
  if (!openOnly) {
    lines.push(
      a.recent.length === 0
        ? 'no recently resolved incidents'
        : `recently resolved (${count(a.recent.length)})`,
      ...table(
        a.recent.map((i) => [i.kind, i.sku, `${i.firstSeenAt} -> ${i.resolvedAt ?? '?'}`]),
      ).map((l) => `  ${l}`),
    );
  }
  return lines;
}
