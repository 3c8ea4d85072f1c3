import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/** The four query types the Zerotrace backend answers (pkg/plugin). */
export type QueryType = 'trace' | 'search' | 'serviceMap' | 'metrics';

/** Response status classes a span carries (span field response_status). */
export type ResponseStatus = 'ok' | 'client_error' | 'server_error' | 'timeout' | '';

/**
 * One Zerotrace query, exactly as the backend decodes it (see docs/plugin.md).
 * Empty strings mean "no filter".
 */
export interface ZerotraceQuery extends DataQuery {
  queryType: QueryType;
  /** trace: the trace to assemble (a 32-hex id or a stable derived id). */
  traceId?: string;
  /** trace: assemble from this span when no trace id is known. */
  spanId?: string;
  namespace?: string;
  service?: string;
  /** Kubernetes workload (Deployment, StatefulSet, DaemonSet, CronJob…), e.g. productpage-v1. */
  workload?: string;
  /** l7 protocol, e.g. http, grpc, mysql. */
  protocol?: string;
  /** normalised resource, e.g. "GET /reviews/{id}". */
  endpoint?: string;
  status?: ResponseStatus;
  /** Go duration string, e.g. "100ms", "1.5s". */
  minDuration?: string;
  /** search: maximum number of rows. */
  limit?: number;
}

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

/** Options configured for each data source instance (jsonData). */
export interface ZerotraceOptions extends DataSourceJsonData {
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

/** Matches a Go time.ParseDuration string: "100ms", "1.5s", "1m30s". */
const durationRe = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

export function isValidDuration(d: string): boolean {
  return d === '' || durationRe.test(d);
}
