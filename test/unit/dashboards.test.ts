// The Grafana dashboard and the Prometheus alert rules name metrics and labels by string,
// and nothing else notices when one is renamed: a panel goes blank, an alert never fires.
// This reads every PromQL expression under ops/ and checks each metric and label it names
// against what the engine's registry exports, and the compose provisioning against the
// files it mounts (Docker and promtool are not needed).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { configSchema } from '../../src/shared/config.js';
import { ERROR_CODES } from '../../src/shared/errors.js';
import { registry } from '../../src/shared/metrics.js';
// Metrics register themselves where they are defined (src/shared/metrics.ts, and a few
// modules beside it): load the composition root so the registry holds all the engine's.
import '../../src/engine.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ops = join(root, 'ops');
const readJson = (path: string): any => JSON.parse(readFileSync(path, 'utf8'));
const readYaml = (path: string): any => parseYaml(readFileSync(path, 'utf8'));

// ---------------------------------------------------------------------------------------
// A small PromQL reader: enough to find metric names, label matchers and grouping labels.

/** PromQL functions (Prometheus 3), and the aggregation operators. */
const FUNCTIONS = new Set(
  (
    'abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes ' +
    'clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year ' +
    'days_in_month deg delta deriv double_exponential_smoothing exp floor histogram_avg ' +
    'histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar ' +
    'histogram_sum holt_winters hour idelta increase info irate label_join label_replace ' +
    'last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi ' +
    'predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin ' +
    'sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time ' +
    'stdvar_over_time sum_over_time tan tanh time timestamp vector year start end'
  ).split(' '),
);
const AGGREGATIONS = new Set(
  'sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio'.split(
    ' ',
  ),
);
/** Keywords followed by a list of label names. */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

interface Token {
  kind: 'ident' | 'string' | 'number' | 'var' | 'punct';
  text: string;
}

// Order matters: strings and Grafana variables before identifiers, numbers and durations
// (`5m`, `1h30m`, `1e3`) before identifiers.
const TOKEN =
  /(\s+|#[^\n]*)|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)|(\$\{[^}]+\}|\$\w+)|((?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?:[a-zA-Z]+\d*)*)|([A-Za-z_:][\w:]*)|(=~|!~|!=|==|>=|<=|[-+*/%^=<>(){}[\],@:])/y;

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expr.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(expr);
    if (!m) throw new Error(`cannot read PromQL at "${expr.slice(at, at + 20)}" in: ${expr}`);
    if (m[2]) tokens.push({ kind: 'string', text: m[2] });
    else if (m[3]) tokens.push({ kind: 'var', text: m[3] });
    else if (m[4]) tokens.push({ kind: 'number', text: m[4] });
    else if (m[5]) tokens.push({ kind: 'ident', text: m[5] });
    else if (m[6]) tokens.push({ kind: 'punct', text: m[6] });
  }
  return tokens;
}

/** For every opening bracket, the index of its closing one. */
function brackets(tokens: Token[], expr: string): Map<number, number> {
  const close: Record<string, string> = { '(': ')', '{': '}', '[': ']' };
  const pairs = new Map<number, number>();
  const open: number[] = [];
  tokens.forEach((t, i) => {
    if (t.kind !== 'punct') return;
    if (close[t.text]) open.push(i);
    else if (')}]'.includes(t.text)) {
      const o = open.pop();
      if (o === undefined || close[tokens[o]!.text] !== t.text)
        throw new Error(`unbalanced "${t.text}" in: ${expr}`);
      pairs.set(o, i);
    }
  });
  if (open.length) throw new Error(`unclosed bracket in: ${expr}`);
  return pairs;
}

interface Matcher {
  label: string;
  op: string;
  value: string;
}
interface Selector {
  metric: string;
  matchers: Matcher[];
  at: number;
}
interface Grouping {
  keyword: string;
  labels: string[];
  /** The selectors whose metrics the labels must come from. */
  scope: Selector[];
}
interface PromqlReading {
  selectors: Selector[];
  groupings: Grouping[];
  variables: string[];
}

const unquote = (s: string) =>
  s.startsWith('`') ? s.slice(1, -1) : s.slice(1, -1).replace(/\\(.)/g, '$1');

function readPromql(expr: string): PromqlReading {
  const tokens = tokenize(expr);
  const pairs = brackets(tokens, expr);
  const selectors: Selector[] = [];
  const lists: { keyword: string; at: number; labels: string[] }[] = [];
  const variables = tokens.filter((t) => t.kind === 'var').map((t) => t.text);
  const text = (i: number) => tokens[i]?.text;

  const readMatchers = (open: number): Matcher[] => {
    const matchers: Matcher[] = [];
    const end = pairs.get(open)!;
    for (let i = open + 1; i < end; i += 4) {
      const [label, op, value, sep] = [tokens[i], tokens[i + 1], tokens[i + 2], tokens[i + 3]];
      const ok =
        label?.kind === 'ident' &&
        ['=', '!=', '=~', '!~'].includes(op?.text ?? '') &&
        (value?.kind === 'string' || value?.kind === 'var') &&
        (i + 3 === end || sep?.text === ',');
      if (!ok) throw new Error(`cannot read the label matchers of: ${expr}`);
      matchers.push({
        label: label.text,
        op: op!.text,
        value: value.kind === 'string' ? unquote(value.text) : value.text,
      });
    }
    return matchers;
  };

  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'punct' && t.text === '[') {
      i = pairs.get(i)!; // a range or subquery: durations and variables only
    } else if (t.kind === 'punct' && t.text === '{') {
      // A selector without a metric name: only {__name__="..."} names one.
      const matchers = readMatchers(i);
      const name = matchers.find((m) => m.label === '__name__' && m.op === '=');
      if (!name) throw new Error(`a selector without a metric name in: ${expr}`);
      selectors.push({ metric: name.value, matchers, at: i });
      i = pairs.get(i)!;
    } else if (t.kind === 'ident') {
      const word = t.text.toLowerCase();
      if (LABEL_LISTS.has(word)) {
        if (text(i + 1) !== '(') continue; // group_left without a list
        const end = pairs.get(i + 1)!;
        const labels = tokens.slice(i + 2, end).filter((x) => x.text !== ',');
        if (labels.some((x) => x.kind !== 'ident'))
          throw new Error(`cannot read the "${word}" list of: ${expr}`);
        lists.push({ keyword: word, at: i, labels: labels.map((x) => x.text) });
        i = end;
      } else if (KEYWORDS.has(word)) {
        continue;
      } else if (
        text(i + 1) === '(' ||
        (AGGREGATIONS.has(t.text) && /^(by|without)$/.test(text(i + 1) ?? ''))
      ) {
        if (!FUNCTIONS.has(t.text) && !AGGREGATIONS.has(t.text))
          throw new Error(`unknown PromQL function "${t.text}" in: ${expr}`);
      } else {
        const matchers = text(i + 1) === '{' ? readMatchers(i + 1) : [];
        selectors.push({ metric: t.text, matchers, at: i });
        if (text(i + 1) === '{') i = pairs.get(i + 1)!;
      }
    }
  }

  // by/without belong to an aggregation, before its argument or after it; their labels must
  // come from a metric inside that argument. on/ignoring/group_* join two sides: any metric
  // of the expression will do.
  const inside = (from: number, to: number) => selectors.filter((s) => s.at > from && s.at < to);
  const groupings = lists.map(({ keyword, at, labels }): Grouping => {
    if (keyword !== 'by' && keyword !== 'without') return { keyword, labels, scope: selectors };
    if (AGGREGATIONS.has(text(at - 1) ?? '')) {
      const argument = pairs.get(at + 1)! + 1;
      if (text(argument) !== '(') throw new Error(`"${keyword}" without an argument in: ${expr}`);
      return { keyword, labels, scope: inside(argument, pairs.get(argument)!) };
    }
    const opener = [...pairs].find(([, c]) => c === at - 1)?.[0];
    if (opener === undefined || !AGGREGATIONS.has(text(opener - 1) ?? ''))
      throw new Error(`"${keyword}" outside an aggregation in: ${expr}`);
    return { keyword, labels, scope: inside(opener, at - 1) };
  });

  return { selectors, groupings, variables };
}

// ---------------------------------------------------------------------------------------
// What the engine exports, as Prometheus stores it.

interface Series {
  labels: Set<string>;
}

/** Labels Prometheus adds to every series it scrapes. */
const TARGET_LABELS = ['instance', 'job'];
/** Series Prometheus writes itself for every target. */
const PROMETHEUS_SERIES = [
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
];

/**
 * Every series name Prometheus stores from a scrape of the engine, with its labels: a
 * histogram is name_bucket (with le), name_sum and name_count, so an expression's _bucket
 * must belong to a histogram, not merely end that way.
 */
async function exportedSeries(): Promise<Map<string, Series>> {
  const series = new Map<string, Series>();
  const add = (name: string, labels: Iterable<string>) =>
    series.set(name, { labels: new Set([...labels, ...TARGET_LABELS, '__name__']) });
  for (const name of PROMETHEUS_SERIES) add(name, []);
  for (const m of await registry.getMetricsAsJSON()) {
    // labelNames is not in prom-client's types, but every metric keeps it; the labels seen
    // on values cover a metric that might not.
    const declared =
      (registry.getSingleMetric(m.name) as unknown as { labelNames?: readonly string[] })
        .labelNames ?? [];
    const seen = m.values.flatMap((v) => Object.keys(v.labels));
    const labels = [...declared, ...seen].filter((l) => l !== 'le' && l !== 'quantile');
    const type = String(m.type);
    if (type === 'histogram') add(`${m.name}_bucket`, [...labels, 'le']);
    if (type === 'summary') add(m.name, [...labels, 'quantile']);
    if (type === 'histogram' || type === 'summary') {
      add(`${m.name}_sum`, labels);
      add(`${m.name}_count`, labels);
    } else {
      add(m.name, labels);
    }
  }
  if (!series.has('flashsale_purchase_duration_seconds_count'))
    throw new Error('the registry does not look like the engine’s');
  return series;
}

/** A histogram's _bucket/_sum/_count named by its family, for the failure messages. */
const familyName = (series: string) => series.replace(/_(bucket|sum|count)$/, '');

/** Every metric and label an expression names that the engine does not export. */
function unknownNames(where: string, expr: string, exported: Map<string, Series>): string[] {
  const problems: string[] = [];
  const { selectors, groupings } = readPromql(expr);
  if (selectors.length === 0) problems.push(`${where}: names no metric`);
  for (const s of selectors) {
    const known = exported.get(s.metric);
    if (!known) {
      const family = familyName(s.metric);
      problems.push(
        `${where}: metric ${family}${family === s.metric ? '' : ` (${s.metric})`} is not exported`,
      );
      continue;
    }
    for (const m of s.matchers)
      if (!known.labels.has(m.label))
        problems.push(`${where}: ${s.metric} has no label "${m.label}"`);
    for (const m of s.matchers) problems.push(...unknownValues(where, m));
  }
  for (const g of groupings) {
    // A metric that is not exported at all is reported above, once.
    if (!g.scope.some((s) => exported.has(s.metric))) continue;
    const labels = new Set(g.scope.flatMap((s) => [...(exported.get(s.metric)?.labels ?? [])]));
    for (const l of g.labels)
      if (!labels.has(l))
        problems.push(
          `${where}: "${g.keyword} (${l})" but no metric it applies to (${g.scope.map((s) => s.metric).join(', ')}) has that label`,
        );
  }
  return problems;
}

/** Where the label's values are a known list, a matcher may only name values from it. */
function unknownValues(where: string, m: Matcher): string[] {
  const codes = Object.keys(ERROR_CODES);
  const known: Record<string, string[]> = {
    code: codes,
    outcome: ['created', 'replayed', ...codes],
  };
  const list = known[m.label];
  if (!list || (m.op !== '=' && m.op !== '=~')) return [];
  const words = m.op === '=' ? [m.value] : m.value.split('|');
  if (!words.every((w) => /^\w+$/.test(w))) return []; // a pattern, or a variable
  return words
    .filter((w) => !list.includes(w))
    .map((w) => `${where}: ${m.label}="${w}" is never exported`);
}

// ---------------------------------------------------------------------------------------
// The files.

interface Panel {
  id?: number;
  title?: string;
  type: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; datasource?: { type?: string; uid?: string } }[];
  panels?: Panel[];
}

const dashboardPath = join(ops, 'grafana/dashboards/flashsale.json');
const dashboard = readJson(dashboardPath);
const panels = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
const dashboardPanels = panels(dashboard.panels);
const dashboardExprs = dashboardPanels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr ?? '' })),
);
const variables: { name: string; type: string; query?: unknown; current?: { value?: unknown } }[] =
  dashboard.templating.list;

const alertsPath = join(ops, 'prometheus/alerts.yml');
const rules: {
  alert?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}[] = readYaml(alertsPath).groups.flatMap((g: { rules: unknown[] }) => g.rules);
const prometheus = readYaml(join(ops, 'prometheus/prometheus.yml'));
const compose = readYaml(join(root, 'docker-compose.yml'));

describe('the PromQL reader', () => {
  const names = (expr: string) => readPromql(expr).selectors.map((s) => s.metric);

  it('finds metrics under functions, aggregations, ranges and binary operators', () => {
    assert.deepEqual(names('sum by (sku) (rate(a_total{sku=~"$sku"}[$__rate_interval]))'), [
      'a_total',
    ]);
    assert.deepEqual(names('histogram_quantile(0.99, sum(rate(h_bucket[5m])) by (le)) > 0.25'), [
      'h_bucket',
    ]);
    assert.deepEqual(names('max by (p) (g) > 5 and on (p) max by (p) (s) > 0'), ['g', 's']);
    assert.deepEqual(names('(sum(increase(c[5m])) or vector(0)) == 0'), ['c']);
    assert.deepEqual(names('x{r=~"a|b"} unless x{r=~"a|b"} offset 10m'), ['x', 'x']);
    assert.deepEqual(names('rate(c[5m:1m]) * 60 / 1e3 + Inf'), ['c']);
    assert.deepEqual(names('{__name__="n", job="j"}'), ['n']);
  });

  it('ties matchers to their metric and by-labels to the aggregation’s argument', () => {
    const r = readPromql('sum by (sku) (rate(a{sku="x", o!~"y"}[1m])) / sum(b) by (le)');
    assert.deepEqual(
      r.selectors.map((s) => [s.metric, s.matchers.map((m) => `${m.label}${m.op}${m.value}`)]),
      [
        ['a', ['sku=x', 'o!~y']],
        ['b', []],
      ],
    );
    assert.deepEqual(
      r.groupings.map((g) => [g.labels, g.scope.map((s) => s.metric)]),
      [
        [['sku'], ['a']],
        [['le'], ['b']],
      ],
    );
    assert.deepEqual(readPromql('rate(a[$__rate_interval]) + b{s="$sku"}').variables, [
      '$__rate_interval',
    ]);
  });

  it('refuses what it cannot read instead of guessing', () => {
    assert.throws(() => readPromql('rat(a[1m])'), /unknown PromQL function "rat"/);
    assert.throws(() => readPromql('sum(rate(a[1m])'), /unclosed/);
    assert.throws(() => readPromql('a{sku}'), /label matchers/);
  });

  it('flags a renamed metric, a renamed label and an unknown error code', async () => {
    const exported = await exportedSeries();
    assert.deepEqual(unknownNames('t', 'rate(flashsale_http_errors_total[1m])', exported), []);
    assert.match(
      unknownNames('t', 'rate(flashsale_purchase_total[1m])', exported).join(),
      /flashsale_purchase_total .* not exported/,
    );
    assert.match(
      unknownNames(
        't',
        'sum by (partition) (rate(flashsale_http_errors_total[1m]))',
        exported,
      ).join(),
      /by \(partition\)/,
    );
    assert.match(
      unknownNames('t', 'flashsale_http_errors_total{code="SOLDOUT"}', exported).join(),
      /code="SOLDOUT"/,
    );
    assert.match(
      unknownNames('t', 'flashsale_writer_batch_events_bucket{le="1", part="x"}', exported).join(),
      /no label "part"/,
    );
  });
});

describe('the Grafana dashboard', () => {
  it('names only metrics and labels the engine exports', async () => {
    const exported = await exportedSeries();
    const problems = dashboardExprs.flatMap(({ where, expr }) =>
      unknownNames(where, expr, exported),
    );
    for (const v of variables.filter((x) => x.type === 'query')) {
      const query = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(query);
      if (!m) {
        problems.push(`variable ${v.name}: cannot read "${query}"`);
        continue;
      }
      const where = `variable ${v.name}`;
      problems.push(...unknownNames(where, m[1]!, exported));
      const [selector, ...more] = readPromql(m[1]!).selectors;
      const known = exported.get(selector?.metric ?? '');
      if (more.length || (known && !known.labels.has(m[2]!)))
        problems.push(`${where}: ${m[1]} has no label "${m[2]}"`);
    }
    assert.deepEqual(problems, []);
  });

  it('covers what an operator watches during a sale', () => {
    const named = new Set(
      dashboardExprs.flatMap(({ expr }) =>
        readPromql(expr).selectors.map((s) => familyName(s.metric)),
      ),
    );
    const wanted = [
      'flashsale_units_reserved_total',
      'flashsale_purchases_total',
      'flashsale_sku_available',
      'flashsale_sku_supplied',
      'flashsale_reservations_expiring',
      'flashsale_purchase_duration_seconds',
      'flashsale_http_errors_total',
      'flashsale_stream_length',
      'flashsale_relay_lag_seconds',
      'flashsale_writer_consumer_lag',
      'flashsale_writer_batch_events',
      'flashsale_writer_batch_duration_seconds',
      'flashsale_writer_events_total',
      'flashsale_orders_expired_total',
      'flashsale_reconcile_passes_total',
      'flashsale_open_incidents',
      'flashsale_webhook_deliveries_total',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ];
    assert.deepEqual(
      wanted.filter((w) => !named.has(w)),
      [],
    );
  });

  it('reads every panel from the data source variable and uses only defined variables', () => {
    const ds = variables.find((v) => v.type === 'datasource');
    assert.equal(ds?.name, 'DS_PROMETHEUS');
    const wrong = dashboardPanels
      .filter((p) => p.type !== 'row')
      .flatMap((p) => [p.datasource, ...(p.targets ?? []).map((t) => t.datasource)])
      .filter((d) => d?.type !== 'prometheus' || d.uid !== '${DS_PROMETHEUS}');
    assert.deepEqual(wrong, []);

    const defined = new Set(variables.map((v) => v.name));
    const undefinedVars = dashboardExprs
      .flatMap(({ expr }) => readPromql(expr).variables)
      .map((v) => v.replace(/^\$\{?|(:\w+)?\}$/g, ''))
      .filter((v) => !v.startsWith('__') && !defined.has(v));
    assert.deepEqual(undefinedVars, []);
    const sku = variables.find((v) => v.name === 'sku');
    assert.ok(sku, 'a sku variable');

    const ids = dashboardPanels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    assert.equal(dashboard.uid, 'flashsale-engine');
    assert.ok(dashboard.schemaVersion >= 36, 'a recent schemaVersion');
  });
});

describe('the Prometheus alert rules', () => {
  it('name only metrics and labels the engine exports', async () => {
    const exported = await exportedSeries();
    const problems = rules.flatMap((r) => unknownNames(`alert ${r.alert}`, r.expr ?? '', exported));
    assert.deepEqual(problems, []);
  });

  it('each has a name, a for:, a severity, a summary and a description', () => {
    const names = rules.map((r) => r.alert);
    assert.equal(new Set(names).size, names.length, 'alert names are unique');
    const incomplete = rules.filter(
      (r) =>
        !/^Flashsale\w+$/.test(r.alert ?? '') ||
        !/^\d+[smh]$/.test(r.for ?? '') ||
        !['warning', 'critical'].includes(r.labels?.severity ?? '') ||
        !r.annotations?.summary ||
        !r.annotations.description,
    );
    assert.deepEqual(
      incomplete.map((r) => r.alert),
      [],
    );
  });

  it('select the job prometheus.yml scrapes, on the engine’s default port', () => {
    const jobs: { job_name: string; static_configs: { targets: string[] }[] }[] =
      prometheus.scrape_configs;
    assert.equal(jobs.length, 1);
    const job = jobs[0]!;
    const port = configSchema.parse({ NODE_ENV: 'test' }).PORT;
    assert.deepEqual(
      job.static_configs.flatMap((c) => c.targets),
      [`host.docker.internal:${port}`],
    );
    const jobMatchers = rules.flatMap((r) =>
      readPromql(r.expr ?? '').selectors.flatMap((s) =>
        s.matchers.filter((m) => m.label === 'job').map((m) => m.value),
      ),
    );
    assert.ok(jobMatchers.length > 0);
    assert.deepEqual([...new Set(jobMatchers)], [job.job_name]);
    assert.deepEqual(prometheus.rule_files, ['alerts.yml']);
  });
});

describe('docker-compose provisioning', () => {
  /** host path (relative to the repository) -> container path, for a service's bind mounts. */
  const mounts = (service: string) =>
    new Map<string, string>(
      (compose.services[service].volumes as string[]).map((v) => {
        const [host, container] = v.split(':');
        return [host!.replace(/^\.\//, ''), container!];
      }),
    );

  it('mounts files that exist, where the configurations look for them', () => {
    const prom = mounts('prometheus');
    const graf = mounts('grafana');
    const missing = [...prom.keys(), ...graf.keys()].filter((p) => !existsSync(join(root, p)));
    assert.deepEqual(missing, []);
    assert.equal(prom.get('ops/prometheus'), '/etc/prometheus');
    assert.deepEqual(compose.services.prometheus.extra_hosts, [
      'host.docker.internal:host-gateway',
    ]);

    const provider = readYaml(join(ops, 'grafana/provisioning/dashboards/flashsale.yml'))
      .providers[0];
    assert.equal(graf.get('ops/grafana/dashboards'), provider.options.path);
    assert.equal(
      graf.get('ops/grafana/provisioning/dashboards'),
      '/etc/grafana/provisioning/dashboards',
    );
    assert.equal(
      graf.get('ops/grafana/provisioning/datasources'),
      '/etc/grafana/provisioning/datasources',
    );
  });

  it('gives the data source the uid the dashboard defaults to, at the Prometheus service', () => {
    const [source] = readYaml(
      join(ops, 'grafana/provisioning/datasources/prometheus.yml'),
    ).datasources;
    const ds = variables.find((v) => v.name === 'DS_PROMETHEUS');
    assert.equal(source.uid, ds?.current?.value);
    assert.equal(source.type, 'prometheus');
    assert.equal(source.url, 'http://prometheus:9090');
    assert.ok(compose.services.prometheus.ports.some((p: string) => p.endsWith(':9090')));
    assert.equal(source.jsonData.timeInterval, prometheus.global.scrape_interval);
  });
});
