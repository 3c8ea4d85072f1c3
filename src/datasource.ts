import {
  CoreApp,
  CustomVariableSupport,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceInstanceSettings,
  MetricFindValue,
  ScopedVars,
  TimeRange,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv, TemplateSrv } from '@grafana/runtime';
import { from, map, Observable } from 'rxjs';

import { VariableQueryEditor } from './components/VariableQueryEditor';
import {
  DEFAULT_QUERY,
  FILTER_FIELDS,
  Filter,
  ResourceName,
  VariableDataQuery,
  ZerotraceOptions,
  ZerotraceQuery,
  ZerotraceVariableQuery,
} from './types';

/** Single-valued query fields that may hold template variables. */
const INTERPOLATED: Array<keyof ZerotraceQuery> = ['traceId', 'spanId', 'minDuration', 'maxDuration'];

const RESOURCES: ResourceName[] = ['namespaces', 'services', 'workloads', 'endpoints', 'protocols'];

/** Separates the values of a multi-value variable while interpolating (never in a value). */
const SEP = '\u001f';

/** A variable reference that is a whole field: $x, ${x}, ${x:fmt}, [[x]]. */
const WHOLE_VAR = /^\s*(?:\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\])\s*$/;

/**
 * The values a filter field sends: one value as a string, several (a
 * multi-value variable) as a list, none as ''.
 */
export function filterValue(values: string[]): Filter {
  const out = Array.from(new Set(values.map((v) => v.trim()).filter((v) => v !== '' && v !== '$__all')));
  if (out.length === 0) {
    return '';
  }
  return out.length === 1 ? out[0] : out;
}

/** The values of a filter, whatever form it is in. */
export function filterList(f: Filter | undefined): string[] {
  if (f === undefined || f === '') {
    return [];
  }
  return Array.isArray(f) ? f : [f];
}

/**
 * Parses a variable query. Accepted forms:
 *   namespaces | protocols | services | services(<namespace>) | workloads(<namespace>) | endpoints(<namespace>, <service>)
 * or the object form {resource, namespace, service} the variable editor writes.
 */
export function parseVariableQuery(query: string | ZerotraceVariableQuery): ZerotraceVariableQuery {
  if (typeof query !== 'string') {
    if (!RESOURCES.includes(query.resource)) {
      throw new Error(`unknown resource "${query.resource}": want one of ${RESOURCES.join(', ')}`);
    }
    return query;
  }
  const m = /^\s*(\w+)\s*(?:\(([^)]*)\))?\s*$/.exec(query);
  if (!m || !RESOURCES.includes(m[1] as ResourceName)) {
    throw new Error(
      `invalid variable query "${query}": want one of ${RESOURCES.join(', ')}, e.g. services($namespace)`
    );
  }
  const args = m[2] === undefined ? [] : m[2].split(',').map((a) => a.trim());
  return { resource: m[1] as ResourceName, namespace: args[0] || undefined, service: args[1] || undefined };
}

function describeFilter(name: string, f: Filter | undefined): string {
  const v = filterList(f);
  return v.length === 0 ? '' : `${name}=${v.join('|')}`;
}

/** The one-line text of a query in Explore's query history. */
export function queryDisplayText(q: Partial<ZerotraceQuery>): string {
  const type = q.queryType ?? 'search';
  if (type === 'trace') {
    return q.traceId ? `Trace ${q.traceId}` : `Trace of span ${q.spanId ?? ''}`;
  }
  const parts: string[] = [];
  for (const f of FILTER_FIELDS) {
    const d = describeFilter(f, q[f] as Filter | undefined);
    if (d) {
      parts.push(d);
    }
  }
  if (q.minDuration || q.maxDuration) {
    parts.push(`duration ${q.minDuration || '0'}–${q.maxDuration || '∞'}`);
  }
  const filters = parts.length > 0 ? parts.join(' ') : 'all';
  switch (type) {
    case 'metrics':
      return `Metrics ${q.metric ?? 'rate'}: ${filters}`;
    case 'serviceMap':
      return `Service map: ${filters}`;
  }
  return `Search ${q.tableType ?? 'traces'}: ${filters}, limit ${q.limit ?? DEFAULT_QUERY.limit}`;
}

/** Template variables from the backend's resources, edited with VariableQueryEditor. */
export class ZerotraceVariableSupport extends CustomVariableSupport<DataSource, VariableDataQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly ds: DataSource) {
    super();
  }

  query(request: DataQueryRequest<VariableDataQuery>): Observable<DataQueryResponse> {
    const q = request.targets[0];
    return from(this.ds.metricFindQuery(q, { scopedVars: request.scopedVars, range: request.range })).pipe(
      map((values) => ({ data: values }))
    );
  }
}

export class DataSource extends DataSourceWithBackend<ZerotraceQuery, ZerotraceOptions> {
  constructor(
    instanceSettings: DataSourceInstanceSettings<ZerotraceOptions>,
    private readonly templateSrv: TemplateSrv = getTemplateSrv()
  ) {
    super(instanceSettings);
    this.variables = new ZerotraceVariableSupport(this);
  }

  getDefaultQuery(_: CoreApp): Partial<ZerotraceQuery> {
    return DEFAULT_QUERY;
  }

  /** Explore's query history shows this instead of the query's JSON. */
  getQueryDisplayText(query: ZerotraceQuery): string {
    return queryDisplayText(query);
  }

  /**
   * Replaces template variables: single-valued fields as text, filters as
   * lists of values (a multi-value variable's selection; "All" is no filter).
   */
  applyTemplateVariables(query: ZerotraceQuery, scopedVars: ScopedVars): ZerotraceQuery {
    const out: ZerotraceQuery = { ...query, queryType: query.queryType ?? 'search' };
    const fields = out as unknown as Record<string, unknown>;
    for (const key of INTERPOLATED) {
      const v = out[key];
      if (typeof v === 'string' && v !== '') {
        fields[key] = this.templateSrv.replace(v, scopedVars);
      }
    }
    for (const key of FILTER_FIELDS) {
      const v = out[key];
      if (v !== undefined && v !== '') {
        fields[key] = filterValue(filterList(v as Filter).flatMap((x) => this.interpolateList(x, scopedVars)));
      }
    }
    return out;
  }

  interpolateVariablesInQueries(queries: ZerotraceQuery[], scopedVars: ScopedVars): ZerotraceQuery[] {
    return queries.map((q) => ({ ...this.applyTemplateVariables(q, scopedVars), datasource: this.getRef() }));
  }

  /** A trace query without a trace or span id has nothing to show, so it is not sent. */
  filterQuery(query: ZerotraceQuery): boolean {
    if (query.hide) {
      return false;
    }
    if ((query.queryType ?? 'search') === 'trace') {
      return !!(query.traceId?.trim() || query.spanId?.trim());
    }
    return true;
  }

  /**
   * Fetches one autocomplete resource (a JSON array of strings) over the
   * time range, when one is given (epoch ms from/to).
   */
  async getResourceValues(
    resource: ResourceName,
    params: { namespace?: string; service?: string } = {},
    range?: TimeRange
  ) {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) {
      if (v) {
        clean[k] = v;
      }
    }
    if (range) {
      clean.from = String(range.from.valueOf());
      clean.to = String(range.to.valueOf());
    }
    const res: unknown = await this.getResource(resource, clean);
    if (!Array.isArray(res)) {
      return [];
    }
    return res.filter((v): v is string => typeof v === 'string');
  }

  /** Template variable values: namespaces, services($namespace), workloads($namespace), endpoints($namespace, $service), protocols. */
  async metricFindQuery(
    query: string | ZerotraceVariableQuery,
    options?: { scopedVars?: ScopedVars; range?: TimeRange }
  ): Promise<MetricFindValue[]> {
    const q = parseVariableQuery(query);
    const scopedVars = options?.scopedVars ?? {};
    // A resource filters on one value: a multi-value variable with several selected filters on none.
    const one = (v?: string) => {
      const vals = v ? this.interpolateList(v, scopedVars) : [];
      return vals.length === 1 ? vals[0] : '';
    };
    const params: { namespace?: string; service?: string } = {};
    if (q.resource === 'services' || q.resource === 'workloads' || q.resource === 'endpoints') {
      params.namespace = one(q.namespace);
    }
    if (q.resource === 'endpoints') {
      params.service = one(q.service);
    }
    const values = await this.getResourceValues(q.resource, params, options?.range);
    return values.map((text): MetricFindValue => ({ text, value: text }));
  }

  /** The values a text holding variables stands for; a variable set to "All" stands for none (no filter). */
  private interpolateList(value: string, scopedVars: ScopedVars): string[] {
    const m = WHOLE_VAR.exec(value);
    if (m && this.isAll(m[1] ?? m[2] ?? m[3], scopedVars)) {
      return [];
    }
    const text = this.templateSrv.replace(value, scopedVars, (v: string | string[]) =>
      Array.isArray(v) ? v.join(SEP) : v
    );
    return text.split(SEP).filter((v) => v !== '' && v !== '$__all');
  }

  private isAll(name: string, scopedVars: ScopedVars): boolean {
    if (scopedVars[name]) {
      return scopedVars[name]?.value === '$__all';
    }
    const v = this.templateSrv.getVariables().find((x) => x.name === name) as
      { current?: { value?: string | string[] } } | undefined;
    const cur = v?.current?.value;
    return cur === '$__all' || (Array.isArray(cur) && cur.includes('$__all'));
  }
}
