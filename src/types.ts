import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/** The four query types the Zerotrace backend answers (pkg/plugin). */
export type QueryType = 'trace' | 'search' | 'serviceMap' | 'metrics';

/** Response status classes a span carries (span field response_status). */
export type ResponseStatus = 'ok' | 'client_error' | 'server_error' | 'timeout' | '';

/** A filter: one value, or a list (a multi-value template variable); empty means "no filter". */
export type Filter = string | string[];

/** Metrics a metrics query computes (pkg/plugin MetricNames). */
export type Metric = 'rate' | 'errors' | 'errorRatio' | 'p50' | 'p75' | 'p90' | 'p95' | 'p99' | 'max';

/** Rows of a search: one per trace (default) or one per matching span. */
export type TableType = 'traces' | 'spans';

/**
 * One Zerotrace query, exactly as the backend decodes it (see docs/plugin.md).
 * Empty strings and empty lists mean "no filter".
 */
export interface ZerotraceQuery extends DataQuery {
  queryType: QueryType;
  /** trace: the trace to assemble (a 32-hex id or a stable derived id; a 16-hex span id works too). */
  traceId?: string;
  /** trace: assemble from this span (16 hex digits) when no trace id is known. */
  spanId?: string;
  namespace?: Filter;
  service?: Filter;
  /** Kubernetes workload (Deployment, StatefulSet, DaemonSet, CronJob…), e.g. productpage-v1. */
  workload?: Filter;
  /** l7 protocol, e.g. http, grpc, mysql. */
  protocol?: Filter;
  /** normalised resource, e.g. "GET /reviews/{id}". */
  endpoint?: Filter;
  status?: ResponseStatus | ResponseStatus[];
  /** Attribute filters: pod, node, response code (503, or a class such as 5xx). */
  pod?: Filter;
  node?: Filter;
  responseCode?: Filter;
  /** Go duration strings, e.g. "100ms", "1.5s". */
  minDuration?: string;
  maxDuration?: string;
  /** search: maximum number of rows (traces or spans). */
  limit?: number;
  /** search: one row per trace (default) or per matching span. */
  tableType?: TableType;
  /** metrics: which RED metric (default rate). */
  metric?: Metric;
  /** metrics: add the slowest call of each interval as exemplars (default true). */
  exemplars?: boolean;
}

/** The filter fields a query sends as lists when a multi-value variable fills them. */
export const FILTER_FIELDS = [
  'namespace',
  'service',
  'workload',
  'protocol',
  'endpoint',
  'status',
  'pod',
  'node',
  'responseCode',
] as const;

export const METRICS: Array<{ label: string; value: Metric; description: string }> = [
  { label: 'Rate', value: 'rate', description: 'Calls per second' },
  { label: 'Errors', value: 'errors', description: 'Failed calls per second' },
  { label: 'Error ratio', value: 'errorRatio', description: 'Failed calls / calls' },
  { label: 'p50', value: 'p50', description: 'Median latency (ms)' },
  { label: 'p75', value: 'p75', description: '75th percentile latency (ms)' },
  { label: 'p90', value: 'p90', description: '90th percentile latency (ms)' },
  { label: 'p95', value: 'p95', description: '95th percentile latency (ms)' },
  { label: 'p99', value: 'p99', description: '99th percentile latency (ms)' },
  { label: 'Max', value: 'max', description: 'The slowest call (ms)' },
];

export const TABLE_TYPES: Array<{ label: string; value: TableType; description: string }> = [
  { label: 'Traces', value: 'traces', description: 'One row per trace: root service, duration, spans' },
  { label: 'Spans', value: 'spans', description: 'One row per matching call' },
];

export const QUERY_TYPES: Array<{ label: string; value: QueryType; description: string }> = [
  { label: 'Search', value: 'search', description: 'Recent calls matching the filters' },
  { label: 'Trace', value: 'trace', description: 'One trace by trace id or span id' },
  { label: 'Service map', value: 'serviceMap', description: 'Services and the calls between them' },
  { label: 'Metrics', value: 'metrics', description: 'Rate, errors and latency per service' },
];

export const STATUSES: Array<{ label: string; value: ResponseStatus }> = [
  { label: 'Any', value: '' },
  { label: 'OK', value: 'ok' },
  { label: 'Client error', value: 'client_error' },
  { label: 'Server error', value: 'server_error' },
  { label: 'Timeout', value: 'timeout' },
];

export const DEFAULT_LIMIT = 20;

export const DEFAULT_QUERY: Partial<ZerotraceQuery> = {
  queryType: 'search',
  limit: DEFAULT_LIMIT,
};

/** Data directories the backend reads when none are configured. */
export const DEFAULT_DATA_DIRS = ['/var/lib/zerotrace'];

/** A span attribute carried into a linked query; `value` renames it there. */
export interface LinkTag {
  key: string;
  value?: string;
}

/** Trace to logs, jsonData.tracesToLogsV2: the shape Grafana's trace view reads. */
export interface TracesToLogsOptions {
  datasourceUid?: string;
  tags?: LinkTag[];
  spanStartTimeShift?: string;
  spanEndTimeShift?: string;
  filterByTraceID?: boolean;
  filterBySpanID?: boolean;
  customQuery?: boolean;
  query?: string;
}

/** One linked metrics query, with ${__tags} for the tags. */
export interface TraceToMetricQuery {
  name?: string;
  query?: string;
}

/** Trace to metrics, jsonData.tracesToMetrics. */
export interface TracesToMetricsOptions {
  datasourceUid?: string;
  tags?: LinkTag[];
  queries?: TraceToMetricQuery[];
  spanStartTimeShift?: string;
  spanEndTimeShift?: string;
}

/** Trace to profiles, jsonData.tracesToProfiles. */
export interface TracesToProfilesOptions {
  datasourceUid?: string;
  tags?: LinkTag[];
  profileTypeId?: string;
  customQuery?: boolean;
  query?: string;
}

/** What the trace view draws inside each span bar (jsonData.spanBar). */
export interface SpanBarOptions {
  type?: 'None' | 'Duration' | 'Tag';
  tag?: string;
}

/** The trace view's links and display settings, read by Grafana from jsonData. */
export interface TraceViewOptions {
  tracesToLogsV2?: TracesToLogsOptions;
  tracesToMetrics?: TracesToMetricsOptions;
  tracesToProfiles?: TracesToProfilesOptions;
  spanBar?: SpanBarOptions;
  nodeGraph?: { enabled?: boolean };
}

/** Options configured for each data source instance (jsonData). */
export interface ZerotraceOptions extends DataSourceJsonData, TraceViewOptions {
  /** One shard directory per node (or one parent of all nodes). */
  dataDirs?: string[];
  /** Where the shards are: local directories (default) or an S3-compatible bucket. */
  storage?: Storage;
  /** bucket: the server's base URL; empty means AWS S3 of the region. */
  bucketEndpoint?: string;
  bucketName?: string;
  /** bucket: the prefix the collectors upload under (s3://bucket/prefix). */
  bucketPrefix?: string;
  bucketRegion?: string;
  bucketAccessKeyId?: string;
  /** bucket: path-style addressing (MinIO, SeaweedFS, Ceph RGW). */
  bucketPathStyle?: boolean;
  bucketInsecureSkipVerify?: boolean;
  /** bucket: PEM file of extra CAs, on the Grafana server. */
  bucketCAFile?: string;
  /** bucket: local cache of downloaded shards (default: <tmp>/zerotrace-cache). */
  cacheDir?: string;
  /** bucket: cache bound in MB (default 1024). */
  cacheSizeMB?: number;
}

export type Storage = 'directories' | 'bucket';

/** Secrets (secureJsonData): never stored in jsonData. */
export interface ZerotraceSecureOptions {
  bucketSecretAccessKey?: string;
  bucketSessionToken?: string;
}

/** The backend's autocomplete resources (CallResource, GET, JSON string arrays). */
export type ResourceName = 'namespaces' | 'services' | 'workloads' | 'endpoints' | 'protocols';

/** Template-variable query (dashboard variables backed by the resources). */
export interface ZerotraceVariableQuery {
  resource: ResourceName;
  /** Filters; may contain template variables such as $namespace. */
  namespace?: string;
  service?: string;
}

/** A variable query as Grafana's variable editor stores it. */
export type VariableDataQuery = ZerotraceVariableQuery & DataQuery;

/** Matches a Go time.ParseDuration string: "100ms", "1.5s", "1m30s". */
const durationRe = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

export function isValidDuration(d: string): boolean {
  return d === '' || durationRe.test(d);
}
