import { CoreApp, DataQueryRequest, dateTime, FieldType } from '@grafana/data';
import { lastValueFrom } from 'rxjs';

import { filterValue, parseVariableQuery, queryDisplayText } from './datasource';
import { fakeBackend, newDataSource, resourceUrl, TestTemplateSrv } from './testutil';
import { ZerotraceQuery } from './types';

const vars = new TestTemplateSrv([
  { name: 'namespace', current: 'bookinfo', options: ['bookinfo', 'istio-system'] },
  { name: 'service', current: '$__all', options: ['details', 'productpage', 'ratings', 'reviews'] },
  { name: 'onens', current: '$__all', options: ['bookinfo'] },
  { name: 'traceId', current: '4bf92f3577b34da6a3ce929d0e0e4736' },
  { name: 'slow', current: '250ms' },
  { name: 'multi', current: ['details', 'reviews'] },
]);

function request(targets: ZerotraceQuery[]): DataQueryRequest<ZerotraceQuery> {
  const from = dateTime(1_700_000_000_000);
  const to = dateTime(1_700_000_900_000);
  return {
    requestId: 'Q1',
    interval: '1s',
    intervalMs: 1000,
    maxDataPoints: 500,
    range: { from, to, raw: { from: 'now-15m', to: 'now' } },
    scopedVars: {},
    targets,
    timezone: 'utc',
    app: CoreApp.Dashboard,
    startTime: 0,
  };
}

describe('DataSource query model', () => {
  it('defaults to a search query with a limit', () => {
    const ds = newDataSource();
    expect(ds.getDefaultQuery(CoreApp.Explore)).toEqual({ queryType: 'search', limit: 20 });
  });

  it('sends trace queries only when they name a trace or a span', () => {
    const ds = newDataSource();
    expect(ds.filterQuery({ refId: 'A', queryType: 'trace' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'trace', traceId: '   ' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'trace', traceId: 'abc' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'trace', spanId: '17' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'search' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'serviceMap', hide: true })).toBe(false);
  });
});

describe('template variables', () => {
  const ds = newDataSource(vars);

  it('replaces variables in every filter field', () => {
    const q = ds.applyTemplateVariables(
      {
        refId: 'A',
        queryType: 'search',
        namespace: '$namespace',
        service: '${multi}',
        endpoint: 'GET /reviews/[[namespace]]',
        minDuration: '$slow',
        status: 'server_error',
        limit: 5,
      },
      {}
    );
    expect(q).toEqual({
      refId: 'A',
      queryType: 'search',
      namespace: 'bookinfo',
      // a multi-value variable: the list of its values
      service: ['details', 'reviews'],
      endpoint: 'GET /reviews/bookinfo',
      minDuration: '250ms',
      status: 'server_error',
      limit: 5,
    });
  });

  it('turns "All" into no filter, and lists of values and variables into one list', () => {
    const q = ds.applyTemplateVariables(
      {
        refId: 'A',
        queryType: 'search',
        service: '$service',
        namespace: '$onens',
        pod: ['reviews-v1', '$multi', 'reviews-v1'],
        node: '${multi:csv}',
        responseCode: '5xx',
      },
      {}
    );
    expect(q.service).toBe('');
    expect(q.namespace).toBe('');
    expect(q.pod).toEqual(['reviews-v1', 'details', 'reviews']);
    expect(q.node).toEqual(['details', 'reviews']);
    expect(q.responseCode).toBe('5xx');
  });

  it('prefers scoped variables (repeated panels, data links)', () => {
    const q = ds.applyTemplateVariables(
      { refId: 'A', queryType: 'trace', traceId: '$traceId', spanId: '' },
      { traceId: { text: 'x', value: 'feedface' } }
    );
    expect(q.traceId).toBe('feedface');
    expect(q.spanId).toBe('');
  });

  it('leaves unknown variables and plain text alone and fills a missing query type', () => {
    const q = ds.applyTemplateVariables({ refId: 'A', traceId: '$nope' } as ZerotraceQuery, {});
    expect(q).toEqual({ refId: 'A', queryType: 'search', traceId: '$nope' });
  });

  it('interpolates queries for Explore with this data source as the target', () => {
    const [q] = ds.interpolateVariablesInQueries([{ refId: 'A', queryType: 'trace', traceId: '$traceId' }], {});
    expect(q.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(q.datasource).toEqual({ type: 'zerotrace-tracing-datasource', uid: 'zerotrace' });
  });

  it('formats filter values the way the backend decodes them', () => {
    expect(filterValue(['a'])).toBe('a');
    expect(filterValue(['a', 'b', 'a'])).toEqual(['a', 'b']);
    expect(filterValue([' a ', ''])).toBe('a');
    expect(filterValue([])).toBe('');
    expect(filterValue(['$__all'])).toBe('');
  });

  it('shows queries in Explore history as text, not JSON', () => {
    expect(
      ds.getQueryDisplayText({ refId: 'A', queryType: 'trace', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' })
    ).toBe('Trace 4bf92f3577b34da6a3ce929d0e0e4736');
    expect(queryDisplayText({ queryType: 'trace', spanId: '2d2d50bea4d9a801' })).toBe('Trace of span 2d2d50bea4d9a801');
    expect(
      queryDisplayText({
        queryType: 'search',
        namespace: 'bookinfo',
        service: ['ratings', 'details'],
        responseCode: '5xx',
        maxDuration: '1s',
        limit: 20,
      })
    ).toBe('Search traces: namespace=bookinfo service=ratings|details responseCode=5xx duration 0–1s, limit 20');
    expect(queryDisplayText({ queryType: 'metrics', metric: 'p99', service: 'reviews' })).toBe(
      'Metrics p99: service=reviews'
    );
    expect(queryDisplayText({ queryType: 'serviceMap' })).toBe('Service map: all');
  });
});

describe('query handling', () => {
  it('posts interpolated queries to /api/ds/query and decodes the frames', async () => {
    const backend = fakeBackend({
      '/api/ds/query': (req) => ({
        results: {
          A: {
            status: 200,
            frames: [
              {
                schema: {
                  refId: 'A',
                  meta: { preferredVisualisationType: 'table' },
                  fields: [
                    { name: 'traceID', type: 'string' },
                    { name: 'service', type: 'string' },
                    { name: 'duration', type: 'number' },
                  ],
                },
                data: {
                  values: [
                    ['4bf92f3577b34da6a3ce929d0e0e4736', 'deadbeef00000000deadbeef00000000'],
                    [req.data.queries[0].service || 'any', 'ratings'],
                    [12.5, 3.25],
                  ],
                },
              },
            ],
          },
          B: { status: 400, error: 'trace 00ff: not found' },
        },
      }),
    });
    const ds = newDataSource(vars);
    const rsp = await lastValueFrom(
      ds.query(
        request([
          { refId: 'A', queryType: 'search', namespace: '$namespace', service: 'reviews', minDuration: '$slow' },
          { refId: 'B', queryType: 'trace', traceId: '00ff' },
        ])
      )
    );

    expect(backend.requests).toHaveLength(1);
    const sent = backend.requests[0];
    expect(sent.url).toBe('/api/ds/query?ds_type=zerotrace-tracing-datasource&requestId=Q1');
    expect(sent.method).toBe('POST');
    expect(sent.headers?.['X-Datasource-Uid']).toBe('zerotrace');
    expect(sent.data.from).toBe('1700000000000');
    expect(sent.data.to).toBe('1700000900000');
    expect(sent.data.queries[0]).toMatchObject({
      refId: 'A',
      queryType: 'search',
      namespace: 'bookinfo',
      service: 'reviews',
      minDuration: '250ms',
      datasource: { type: 'zerotrace-tracing-datasource', uid: 'zerotrace' },
    });
    expect(sent.data.queries[1]).toMatchObject({ refId: 'B', queryType: 'trace', traceId: '00ff' });

    expect(rsp.data).toHaveLength(1);
    const frame = rsp.data[0];
    expect(frame.refId).toBe('A');
    expect(frame.length).toBe(2);
    expect(frame.fields.map((f: { name: string }) => f.name)).toEqual(['traceID', 'service', 'duration']);
    expect(frame.fields[1].values[0]).toBe('reviews');
    expect(frame.fields[2].type).toBe(FieldType.number);
    expect(rsp.errors?.[0]).toMatchObject({ refId: 'B', message: 'trace 00ff: not found' });
  });
});

describe('variable support', () => {
  it('parses the variable query language', () => {
    expect(parseVariableQuery('namespaces')).toEqual({
      resource: 'namespaces',
      namespace: undefined,
      service: undefined,
    });
    expect(parseVariableQuery(' services( $namespace ) ')).toEqual({
      resource: 'services',
      namespace: '$namespace',
      service: undefined,
    });
    expect(parseVariableQuery('endpoints($namespace, $service)')).toEqual({
      resource: 'endpoints',
      namespace: '$namespace',
      service: '$service',
    });
    expect(parseVariableQuery('workloads($namespace)')).toEqual({
      resource: 'workloads',
      namespace: '$namespace',
      service: undefined,
    });
    expect(parseVariableQuery({ resource: 'protocols' })).toEqual({ resource: 'protocols' });
    expect(() => parseVariableQuery('pods')).toThrow('invalid variable query "pods"');
    expect(() => parseVariableQuery('services($a')).toThrow('invalid variable query');
    expect(() => parseVariableQuery({ resource: 'x' as never })).toThrow('unknown resource "x"');
  });

  it('answers variable queries from the backend resources with variables interpolated', async () => {
    const backend = fakeBackend({
      [resourceUrl('namespaces')]: () => ['bookinfo', 'istio-system'],
      [resourceUrl('services')]: (req) =>
        req.params?.namespace === 'bookinfo' ? ['details', 'productpage', 'ratings', 'reviews'] : ['istiod'],
      [resourceUrl('endpoints')]: (req) => [`GET /${req.params?.service}/{id}`, 42, null],
      [resourceUrl('workloads')]: (req) =>
        req.params?.namespace === 'bookinfo' ? ['productpage-v1', 'reviews-v1'] : [],
    });
    const ds = newDataSource(vars);

    expect(await ds.metricFindQuery('namespaces')).toEqual([
      { text: 'bookinfo', value: 'bookinfo' },
      { text: 'istio-system', value: 'istio-system' },
    ]);
    expect((await ds.metricFindQuery('services($namespace)')).map((v) => v.text)).toEqual([
      'details',
      'productpage',
      'ratings',
      'reviews',
    ]);
    // All services selected: no service filter; non-strings from the backend are dropped.
    expect(await ds.metricFindQuery('endpoints($namespace, reviews)')).toEqual([
      { text: 'GET /reviews/{id}', value: 'GET /reviews/{id}' },
    ]);
    await ds.metricFindQuery('endpoints($namespace, $service)');
    expect((await ds.metricFindQuery('workloads($namespace)')).map((v) => v.text)).toEqual([
      'productpage-v1',
      'reviews-v1',
    ]);

    expect(backend.requests.map((r) => [r.url, r.params])).toEqual([
      [resourceUrl('namespaces'), {}],
      [resourceUrl('services'), { namespace: 'bookinfo' }],
      [resourceUrl('endpoints'), { namespace: 'bookinfo', service: 'reviews' }],
      [resourceUrl('endpoints'), { namespace: 'bookinfo' }],
      [resourceUrl('workloads'), { namespace: 'bookinfo' }],
    ]);
    expect(backend.requests[0].headers?.['X-Plugin-Id']).toBe('zerotrace-tracing-datasource');
  });

  it('reports backend errors and rejects bad variable queries', async () => {
    fakeBackend({});
    const ds = newDataSource(vars);
    await expect(ds.metricFindQuery('protocols')).rejects.toMatchObject({ status: 404 });
    await expect(ds.metricFindQuery('whatever')).rejects.toThrow('invalid variable query');
  });
});
