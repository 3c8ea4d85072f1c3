// Every dashboard the plugin provisions, checked against what the backend
// really answers: the golden frames pkg/plugin's TestDashboardGoldenFrames
// writes for each panel query (pkg/plugin/testdata/golden/dashboards/).
// Every regular expression must compile in JavaScript (Grafana's matchers
// run in the browser), and every field, label and frame a panel refers to
// must exist in its frames.
import fs from 'fs';
import path from 'path';

const ROOT = path.resolve(__dirname, '..');
const GOLDEN = path.join(ROOT, 'pkg/plugin/testdata/golden/dashboards');
const PLUGIN_TYPE = 'zerotrace-tracing-datasource';

interface GoldenField {
  name: string;
  type: string;
  labels?: Record<string, string>;
  config?: { displayName?: string; displayNameFromDS?: string };
}
interface GoldenFrame {
  schema: {
    name?: string;
    refId?: string;
    meta?: { preferredVisualisationType?: string; dataTopic?: string };
    fields: GoldenField[];
  };
  data?: { values: unknown[][] };
}

/** Reads a golden file of the Go SDK: "//" comment lines, then the JSON response. */
function readGolden(file: string): GoldenFrame[] {
  const text = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('//'))
    .join('\n');
  const resp = JSON.parse(text) as { status: number; frames?: GoldenFrame[] };
  if (resp.status !== 200 || !resp.frames?.length) {
    throw new Error(`${file}: status ${resp.status}, ${resp.frames?.length ?? 0} frames`);
  }
  return resp.frames;
}

/** Compiles a Grafana regex option ("/body/flags" or a bare pattern) the way the browser does. */
function compile(s: string): RegExp {
  const m = /^\/(.*)\/([gimsuy]*)$/.exec(s);
  return m ? new RegExp(m[1], m[2]) : new RegExp(s);
}

/** Every string under a key named like a regex option, with where it is. */
function regexOptions(node: unknown, at = '$'): Array<{ at: string; re: string }> {
  const out: Array<{ at: string; re: string }> = [];
  if (Array.isArray(node)) {
    node.forEach((v, i) => out.push(...regexOptions(v, `${at}[${i}]`)));
  } else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    for (const [k, v] of Object.entries(o)) {
      if ((k === 'pattern' || k === 'regex') && typeof v === 'string' && v !== '') {
        out.push({ at: `${at}.${k}`, re: v });
      }
      if (k === 'matcher' && v && typeof v === 'object' && (v as { id?: string }).id === 'byRegexp') {
        out.push({ at: `${at}.matcher`, re: String((v as { options?: unknown }).options) });
      }
      out.push(...regexOptions(v, `${at}.${k}`));
    }
  }
  return out;
}

type Panel = {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string };
  targets?: Array<{ refId: string; datasource?: { type?: string } }>;
  fieldConfig?: {
    defaults?: Record<string, unknown>;
    overrides?: Array<{
      matcher: { id: string; options?: unknown };
      properties: Array<{ id: string; value?: unknown }>;
    }>;
  };
  transformations?: Array<{ id: string; options?: Record<string, unknown> }>;
};

/** The problems of one panel against its frames; [] when it is right. */
function panelProblems(panel: Panel, frames: GoldenFrame[]): string[] {
  const problems: string[] = [];
  const fields = frames.filter((f) => f.schema.meta?.dataTopic !== 'annotations').flatMap((f) => f.schema.fields);
  const names = new Set(
    fields.flatMap((f) => [f.name, f.config?.displayName, f.config?.displayNameFromDS].filter(Boolean) as string[])
  );
  const labels = new Set(fields.flatMap((f) => Object.keys(f.labels ?? {})));
  const refIds = new Set(frames.map((f) => f.schema.refId));
  const where = `panel ${panel.id} "${panel.title}"`;
  const checkTemplate = (s: string, at: string) => {
    for (const m of s.matchAll(/\$\{__field\.labels\.(\w+)\}/g)) {
      if (!labels.has(m[1])) {
        problems.push(`${where} ${at}: no field has label ${m[1]}`);
      }
    }
    for (const m of s.matchAll(/\$\{__data\.fields(?:\.(\w+)|\["([^"]+)"\])/g)) {
      if (!names.has(m[1] ?? m[2])) {
        problems.push(`${where} ${at}: no field ${m[1] ?? m[2]}`);
      }
    }
  };
  for (const [i, o] of (panel.fieldConfig?.overrides ?? []).entries()) {
    const opt = String(o.matcher.options ?? '');
    const at = `override ${i} (${o.matcher.id} ${opt})`;
    switch (o.matcher.id) {
      case 'byName':
        if (!names.has(opt)) {
          problems.push(`${where} ${at}: no field named ${opt} in ${[...names].join(', ')}`);
        }
        break;
      case 'byRegexp':
        if (![...names].some((n) => compile(opt).test(n))) {
          problems.push(`${where} ${at}: matches no field of ${[...names].join(', ')}`);
        }
        break;
      case 'byFrameRefID':
        if (!refIds.has(opt)) {
          problems.push(`${where} ${at}: no frame of query ${opt}`);
        }
        break;
      case 'byType':
        if (!fields.some((f) => f.type === opt)) {
          problems.push(`${where} ${at}: no field of type ${opt}`);
        }
        break;
      default:
        problems.push(`${where} ${at}: matcher ${o.matcher.id} is not checked by this test: teach it`);
    }
    checkTemplate(JSON.stringify(o.properties), at);
  }
  checkTemplate(JSON.stringify(panel.fieldConfig?.defaults ?? {}), 'defaults');
  for (const [i, t] of (panel.transformations ?? []).entries()) {
    const at = `transformation ${i} (${t.id})`;
    if (t.id !== 'filterFieldsByName' && t.id !== 'organize') {
      problems.push(`${where} ${at}: not checked by this test: teach it`);
      continue;
    }
    const inc = (t.options?.include ?? {}) as { names?: string[]; pattern?: string };
    for (const n of inc.names ?? []) {
      if (!names.has(n)) {
        problems.push(`${where} ${at}: no field ${n}`);
      }
    }
    if (inc.pattern && ![...names].some((n) => compile(inc.pattern!).test(n))) {
      problems.push(`${where} ${at}: pattern ${inc.pattern} matches no field of ${[...names].join(', ')}`);
    }
    for (const key of ['renameByName', 'indexByName', 'excludeByName']) {
      for (const n of Object.keys((t.options?.[key] ?? {}) as object)) {
        if (!names.has(n)) {
          problems.push(`${where} ${at}: ${key} names no field ${n}`);
        }
      }
    }
  }
  const vis = frames.map((f) => f.schema.meta?.preferredVisualisationType);
  const want: Record<string, Array<string | undefined>> = {
    traces: ['trace'],
    nodeGraph: ['nodeGraph'],
    table: ['table'],
    timeseries: ['graph'],
  };
  if (want[panel.type] && !vis.some((v) => want[panel.type].includes(v))) {
    problems.push(`${where}: a ${panel.type} panel, but the frames are ${vis.join(', ')}`);
  }
  if (panel.type === 'timeseries' && !fields.some((f) => f.type === 'time')) {
    problems.push(`${where}: a time series panel without a time field`);
  }
  return problems;
}

function ours(p: Panel) {
  return p.datasource?.type === PLUGIN_TYPE;
}

const dashboards = [
  ...fs
    .readdirSync(path.join(ROOT, 'provisioning/dashboards'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(ROOT, 'provisioning/dashboards', f)),
  ...fs
    .readdirSync(path.join(ROOT, 'src/dashboards'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(ROOT, 'src/dashboards', f)),
];

describe.each(dashboards.map((f) => [path.relative(ROOT, f), f]))('%s', (_, file) => {
  const dash = JSON.parse(fs.readFileSync(file, 'utf8'));
  const golden = path.join(GOLDEN, path.basename(file, '.json'));

  it('has regular expressions that JavaScript compiles', () => {
    const bad = regexOptions(dash).flatMap(({ at, re }) => {
      try {
        compile(re);
        return [];
      } catch (e) {
        return [`${at}: ${re}: ${(e as Error).message}`];
      }
    });
    expect(bad).toEqual([]);
  });

  it('refers only to fields, labels and queries the backend returns', () => {
    const problems: string[] = [];
    let checked = 0;
    for (const panel of dash.panels as Panel[]) {
      if (!ours(panel)) {
        continue;
      }
      const frames = (panel.targets ?? []).flatMap((t) => {
        const f = path.join(golden, `panel-${panel.id}-${t.refId}.jsonc`);
        if (!fs.existsSync(f)) {
          problems.push(
            `panel ${panel.id} query ${t.refId}: no golden frames ${path.relative(ROOT, f)} (go test ./pkg/plugin -run TestDashboardGoldenFrames -update)`
          );
          return [];
        }
        return readGolden(f);
      });
      problems.push(...panelProblems(panel, frames));
      checked++;
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(0);
  });

  it('links to itself keeping the data source and the variables', () => {
    const self = JSON.stringify(dash).match(/\/d\/[^"]*/g) ?? [];
    expect(self.length).toBeGreaterThan(0);
    for (const url of self) {
      expect(url).toContain('${datasource:queryparam}');
    }
  });
});

describe('the dashboard checks', () => {
  // The RED panels as they were before the metric query: a Go-style (?i)
  // flag that JavaScript rejects, and patterns over display names.
  const before: Panel = {
    id: 1,
    type: 'timeseries',
    title: 'Request rate',
    datasource: { type: PLUGIN_TYPE },
    transformations: [
      { id: 'filterFieldsByName', options: { include: { pattern: '(?i)^(time|.*request.*rate.*)$' } } },
    ],
  };
  it('reject a pattern JavaScript cannot compile', () => {
    expect(() => compile('(?i)^(time|.*request.*rate.*)$')).toThrow(/Invalid group/);
    expect(regexOptions({ panels: [before] })).toHaveLength(1);
  });
  it('reject a reference to a field the frames lack', () => {
    const frames: GoldenFrame[] = [
      {
        schema: {
          refId: 'A',
          meta: { preferredVisualisationType: 'graph' },
          fields: [
            { name: 'time', type: 'time' },
            { name: 'rate', type: 'number', labels: { service: 'a' } },
          ],
        },
      },
    ];
    const p: Panel = {
      ...before,
      transformations: [{ id: 'filterFieldsByName', options: { include: { names: ['request_rate'] } } }],
      fieldConfig: {
        overrides: [
          {
            matcher: { id: 'byFrameRefID', options: 'B' },
            properties: [{ id: 'displayName', value: '${__field.labels.pod}' }],
          },
        ],
      },
    };
    expect(panelProblems(p, frames)).toEqual([
      'panel 1 "Request rate" override 0 (byFrameRefID B): no frame of query B',
      'panel 1 "Request rate" override 0 (byFrameRefID B): no field has label pod',
      'panel 1 "Request rate" transformation 0 (filterFieldsByName): no field request_rate',
    ]);
  });
});
