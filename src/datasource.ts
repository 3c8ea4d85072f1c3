import { CoreApp, DataSourceInstanceSettings, MetricFindValue, ScopedVars } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv, TemplateSrv } from '@grafana/runtime';

import { DEFAULT_QUERY, ResourceName, ZerotraceOptions, ZerotraceQuery, ZerotraceVariableQuery } from './types';

/** Query fields that may hold template variables. */
const INTERPOLATED: Array<keyof ZerotraceQuery> = [
  'traceId',
  'spanId',
  'namespace',
  'service',
  'workload',
  'protocol',
  'endpoint',
  'status',
  'minDuration',
];

const RESOURCES: ResourceName[] = ['namespaces', 'services', 'workloads', 'endpoints', 'protocols'];

/**
 * Formats a template variable's value for a single-valued backend filter:
 * one value passes through, "All" (or several values) means no filter.
 */
export function singleValue(value: string | string[]): string {
  if (Array.isArray(value)) {
    return value.length === 1 ? value[0] : '';
  }
  return value === '$__all' ? '' : value;
}

/**
 * Parses a variable query. Accepted forms:
 *   namespaces | protocols | services | services(<namespace>) | workloads(<namespace>) | endpoints(<namespace>, <service>)
 * or the object form {resource, namespace, service}.
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

export class DataSource extends DataSourceWithBackend<ZerotraceQuery, ZerotraceOptions> {
  constructor(
    instanceSettings: DataSourceInstanceSettings<ZerotraceOptions>,
    private readonly templateSrv: TemplateSrv = getTemplateSrv()
  ) {
    super(instanceSettings);
  }

  getDefaultQuery(_: CoreApp): Partial<ZerotraceQuery> {
    return DEFAULT_QUERY;
  }

  /** Replaces template variables in every string field of the query. */
  applyTemplateVariables(query: ZerotraceQuery, scopedVars: ScopedVars): ZerotraceQuery {
    const out: ZerotraceQuery = { ...query, queryType: query.queryType ?? 'search' };
    for (const key of INTERPOLATED) {
      const v = out[key];
      if (typeof v === 'string' && v !== '') {
        (out as unknown as Record<string, string>)[key] = this.interpolate(v, scopedVars);
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

  /** Fetches one autocomplete resource: a JSON array of strings. */
  async getResourceValues(resource: ResourceName, params: { namespace?: string; service?: string } = {}) {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) {
      if (v) {
        clean[k] = v;
      }
    }
    const res: unknown = await this.getResource(resource, clean);
    if (!Array.isArray(res)) {
      return [];
    }
    return res.filter((v): v is string => typeof v === 'string');
  }

  /** Template variable support: namespaces, services($namespace), workloads($namespace), endpoints($namespace, $service), protocols. */
  async metricFindQuery(query: string | ZerotraceVariableQuery, options?: { scopedVars?: ScopedVars }) {
    const q = parseVariableQuery(query);
    const scopedVars = options?.scopedVars ?? {};
    const namespace = q.namespace ? this.interpolate(q.namespace, scopedVars) : '';
    const service = q.service ? this.interpolate(q.service, scopedVars) : '';
    const params: { namespace?: string; service?: string } = {};
    if (q.resource === 'services' || q.resource === 'workloads' || q.resource === 'endpoints') {
      params.namespace = namespace;
    }
    if (q.resource === 'endpoints') {
      params.service = service;
    }
    const values = await this.getResourceValues(q.resource, params);
    return values.map((text): MetricFindValue => ({ text, value: text }));
  }

  private interpolate(value: string, scopedVars: ScopedVars): string {
    return this.templateSrv.replace(value, scopedVars, singleValue);
  }
}
