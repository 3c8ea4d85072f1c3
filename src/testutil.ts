// Test helpers: a recording BackendSrv standing in for Grafana's HTTP API, a
// TemplateSrv with Grafana's replace semantics, and instance settings.
import { DataSourceInstanceSettings, ScopedVars, TypedVariableModel } from '@grafana/data';
import {
  BackendSrv,
  BackendSrvRequest,
  DataSourceSrv,
  FetchResponse,
  setBackendSrv,
  setDataSourceSrv,
  TemplateSrv,
} from '@grafana/runtime';
import { Observable, of, throwError } from 'rxjs';

import { DataSource } from './datasource';
import { ZerotraceOptions } from './types';

export const DS_UID = 'zerotrace';

export function instanceSettings(jsonData: ZerotraceOptions = {}): DataSourceInstanceSettings<ZerotraceOptions> {
  return {
    id: 7,
    uid: DS_UID,
    type: 'zerotrace-tracing-datasource',
    name: 'Zerotrace',
    access: 'proxy',
    readOnly: false,
    jsonData,
    meta: {
      id: 'zerotrace-tracing-datasource',
      name: 'Zerotrace',
      type: 'datasource',
      info: {
        author: { name: 'Zerotrace' },
        description: '',
        links: [],
        logos: { small: '', large: '' },
        screenshots: [],
        updated: '',
        version: '',
      },
      module: '',
      baseUrl: '',
    },
  } as unknown as DataSourceInstanceSettings<ZerotraceOptions>;
}

/** One variable of the fake template service. */
export interface Variable {
  name: string;
  /** Current value; "$__all" selects every option. */
  current: string | string[];
  options?: string[];
}

/**
 * TemplateSrv with the parts of Grafana's replace that a data source relies on:
 * $var, ${var}, ${var:format}, [[var]]; scoped variables first; "All" expands to
 * every option; a format function receives a string or, for several values, an array.
 */
export class TestTemplateSrv implements TemplateSrv {
  constructor(private vars: Variable[] = []) {}

  getVariables(): TypedVariableModel[] {
    return this.vars.map((v) => ({ name: v.name, current: { value: v.current } }) as unknown as TypedVariableModel);
  }

  containsTemplate(target?: string): boolean {
    return !!target && /\$\w+|\$\{\w+|\[\[\w+/.test(target);
  }

  updateTimeRange(): void {}

  replace(target?: string, scopedVars?: ScopedVars, format?: string | Function): string {
    if (!target) {
      return target ?? '';
    }
    return target.replace(/\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]/g, (match, a, b, fmt, c) => {
      const name = a ?? b ?? c;
      let value: string | string[] | undefined;
      const scoped = scopedVars?.[name];
      if (scoped) {
        value = scoped.value as string;
      } else {
        const v = this.vars.find((x) => x.name === name);
        if (!v) {
          return match;
        }
        value = v.current === '$__all' ? (v.options ?? []) : v.current;
      }
      if (typeof format === 'function') {
        return format(value);
      }
      return Array.isArray(value) ? (value.length === 1 ? value[0] : `{${value.join(',')}}`) : value;
    });
  }
}

/** A request the fake backend received. */
export interface Recorded {
  url: string;
  method?: string;
  params?: Record<string, string>;
  data?: any;
  headers?: Record<string, string>;
}

type Handler = (req: BackendSrvRequest) => unknown;

/**
 * Installs a BackendSrv whose fetch answers from handlers keyed by URL path
 * (without the query string) and records every request.
 */
export function fakeBackend(handlers: Record<string, Handler>) {
  const requests: Recorded[] = [];
  const fetch = (req: BackendSrvRequest): Observable<FetchResponse> => {
    requests.push({ url: req.url, method: req.method, params: req.params, data: req.data, headers: req.headers });
    const path = req.url.split('?')[0];
    const h = handlers[path];
    if (!h) {
      return throwError(() => ({ status: 404, data: { message: `no handler for ${path}` } }));
    }
    let data: unknown;
    try {
      data = h(req);
    } catch (err) {
      return throwError(() => ({ status: 500, data: { message: (err as Error).message } }));
    }
    return of({
      data,
      status: 200,
      statusText: 'OK',
      ok: true,
      headers: new Headers(),
      redirected: false,
      type: 'basic',
      url: req.url,
      config: req,
    } as FetchResponse);
  };
  const srv = { fetch } as unknown as BackendSrv;
  setBackendSrv(srv);
  return { requests };
}

export function newDataSource(tmpl: TemplateSrv = new TestTemplateSrv(), jsonData: ZerotraceOptions = {}) {
  return new DataSource(instanceSettings(jsonData), tmpl);
}

export const resourceUrl = (name: string) => `/api/datasources/uid/${DS_UID}/resources/${name}`;

/** A data source of the fake DataSourceSrv: name, uid, plugin type, and whether it serves logs or metrics. */
export interface FakeDataSource {
  uid: string;
  name: string;
  type: string;
  logs?: boolean;
  metrics?: boolean;
}

/**
 * Installs a DataSourceSrv listing the given data sources, filtered the way
 * Grafana's getList filters (logs, metrics, type/pluginId), for the
 * DataSourcePicker of @grafana/runtime.
 */
export function fakeDataSources(list: FakeDataSource[]) {
  const settings = (d: FakeDataSource) =>
    ({
      uid: d.uid,
      name: d.name,
      type: d.type,
      jsonData: {},
      meta: { id: d.type, name: d.type, logs: d.logs, metrics: d.metrics, info: { logos: { small: '', large: '' } } },
    }) as unknown as DataSourceInstanceSettings;
  const srv = {
    getList: (f: { logs?: boolean; metrics?: boolean; type?: string | string[]; pluginId?: string } = {}) =>
      list
        .filter(
          (d) =>
            (!f.logs || d.logs) &&
            (!f.metrics || d.metrics) &&
            (!f.pluginId || d.type === f.pluginId) &&
            (!f.type || (Array.isArray(f.type) ? f.type.includes(d.type) : d.type === f.type))
        )
        .map(settings),
    getInstanceSettings: (ref: unknown) => {
      const uid = typeof ref === 'string' ? ref : (ref as { uid?: string } | null)?.uid;
      const d = list.find((x) => x.uid === uid || x.name === uid);
      return d ? settings(d) : undefined;
    },
    get: () => Promise.reject(new Error('not in tests')),
    reload: () => {},
    registerRuntimeDataSource: () => {},
  } as unknown as DataSourceSrv;
  setDataSourceSrv(srv);
}
