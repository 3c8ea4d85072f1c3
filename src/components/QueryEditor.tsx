import React, { useCallback, useState } from 'react';
import { QueryEditorProps } from '@grafana/data';
import {
  Combobox,
  ComboboxOption,
  InlineField,
  InlineFieldRow,
  InlineSwitch,
  Input,
  RadioButtonGroup,
} from '@grafana/ui';

import { DataSource, filterList, filterValue } from '../datasource';
import {
  DEFAULT_LIMIT,
  Filter,
  isValidDuration,
  Metric,
  METRICS,
  QUERY_TYPES,
  ResponseStatus,
  STATUSES,
  TABLE_TYPES,
  TableType,
  ZerotraceOptions,
  ZerotraceQuery,
} from '../types';

type Props = QueryEditorProps<DataSource, ZerotraceQuery, ZerotraceOptions>;

const LABEL_WIDTH = 14;

/** A filter's text in an input: a list shows as comma-separated values. */
function filterText(f: Filter | undefined): string {
  return filterList(f).join(', ');
}

/** What an input's text means as a filter: comma-separated values; a template variable stays whole. */
function parseFilterText(text: string): Filter {
  return filterValue(text.includes('$') ? [text] : text.split(','));
}

interface FilterProps {
  label: string;
  id: string;
  value?: Filter;
  placeholder: string;
  tooltip: string;
  /** Loads the resource's values; called when the menu opens and as the user types. */
  load: () => Promise<string[]>;
  onChange: (v: string) => void;
}

/**
 * One search filter: a combobox whose options come from a backend resource.
 * Any value may be typed (template variables such as $namespace included).
 */
function FilterCombobox({ label, id, value, placeholder, tooltip, load, onChange }: FilterProps) {
  const [error, setError] = useState('');
  const options = useCallback(
    async (input: string): Promise<Array<ComboboxOption<string>>> => {
      try {
        const values = await load();
        setError('');
        const needle = input.toLowerCase();
        return values.filter((v) => v.toLowerCase().includes(needle)).map((v) => ({ label: v, value: v }));
      } catch (err) {
        setError(`loading ${label.toLowerCase()} values: ${err instanceof Error ? err.message : String(err)}`);
        return [];
      }
    },
    [load, label]
  );
  return (
    <InlineField label={label} labelWidth={LABEL_WIDTH} tooltip={tooltip} invalid={!!error} error={error}>
      <Combobox<string>
        id={id}
        aria-label={label}
        width={28}
        isClearable
        createCustomValue
        placeholder={placeholder}
        value={filterText(value) || null}
        options={options}
        onChange={(o) => onChange(o?.value ?? '')}
      />
    </InlineField>
  );
}

/** Filters on span attributes the backend has no autocomplete resource for. */
const ATTRIBUTE_FILTERS: Array<{
  key: 'pod' | 'node' | 'responseCode';
  label: string;
  placeholder: string;
  tooltip: string;
}> = [
  {
    key: 'pod',
    label: 'Pod',
    placeholder: 'any pod',
    tooltip: 'Only spans of these pods (comma-separated, or a variable)',
  },
  { key: 'node', label: 'Node', placeholder: 'any node', tooltip: 'Only spans captured on these nodes' },
  {
    key: 'responseCode',
    label: 'Response code',
    placeholder: 'e.g. 503 or 5xx',
    tooltip: 'Only calls answered with these codes: 503, or a class such as 5xx',
  },
];

/** One free-text filter (no autocomplete resource): comma-separated values or a template variable. */
function TextFilter({
  label,
  id,
  value,
  placeholder,
  tooltip,
  onChange,
}: {
  label: string;
  id: string;
  value?: Filter;
  placeholder: string;
  tooltip: string;
  onChange: (v: Filter) => void;
}) {
  const [text, setText] = useState(filterText(value));
  return (
    <InlineField label={label} labelWidth={LABEL_WIDTH} tooltip={tooltip}>
      <Input
        id={id}
        aria-label={label}
        width={28}
        value={text}
        placeholder={placeholder}
        onChange={(e) => setText(e.currentTarget.value)}
        onBlur={() => {
          const next = parseFilterText(text);
          if (JSON.stringify(next) !== JSON.stringify(value ?? '')) {
            onChange(next);
          }
        }}
      />
    </InlineField>
  );
}

/** A duration input that reports a Go duration or nothing. */
function DurationInput({
  label,
  id,
  value,
  tooltip,
  onChange,
}: {
  label: string;
  id: string;
  value?: string;
  tooltip: string;
  onChange: (v: string) => void;
}) {
  const [text, setText] = useState(value ?? '');
  const invalid = !isValidDuration(text.trim());
  return (
    <InlineField
      label={label}
      labelWidth={LABEL_WIDTH}
      tooltip={tooltip}
      invalid={invalid}
      error={invalid ? 'Use a duration like 100ms, 1.5s or 2m' : undefined}
    >
      <Input
        id={id}
        width={12}
        value={text}
        placeholder="e.g. 100ms"
        onChange={(e) => setText(e.currentTarget.value)}
        onBlur={() => {
          const v = text.trim();
          if (isValidDuration(v) && v !== (value ?? '')) {
            onChange(v);
          }
        }}
      />
    </InlineField>
  );
}

export function QueryEditor({ datasource, query, onChange, onRunQuery, range }: Props) {
  const queryType = query.queryType ?? 'search';
  // Resources filter on one value; a list (or a variable with several values) filters on none.
  const one = (f: Filter | undefined) => {
    const v = filterList(f);
    return v.length === 1 ? v[0] : undefined;
  };
  const namespace = one(query.namespace);
  const service = one(query.service);
  const loadNamespaces = useCallback(() => datasource.getResourceValues('namespaces', {}, range), [datasource, range]);
  const loadProtocols = useCallback(() => datasource.getResourceValues('protocols', {}, range), [datasource, range]);
  const loadServices = useCallback(
    () => datasource.getResourceValues('services', { namespace }, range),
    [datasource, namespace, range]
  );
  const loadWorkloads = useCallback(
    () => datasource.getResourceValues('workloads', { namespace }, range),
    [datasource, namespace, range]
  );
  const loadEndpoints = useCallback(
    () => datasource.getResourceValues('endpoints', { namespace, service }, range),
    [datasource, namespace, service, range]
  );
  const [limit, setLimit] = useState(String(query.limit ?? DEFAULT_LIMIT));

  const update = (patch: Partial<ZerotraceQuery>, run = true) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  const limitNum = Number(limit);
  const limitInvalid = limit.trim() !== '' && !(Number.isInteger(limitNum) && limitNum > 0);

  return (
    <div>
      <InlineFieldRow>
        <InlineField label="Query type" labelWidth={LABEL_WIDTH}>
          <RadioButtonGroup<ZerotraceQuery['queryType']>
            options={QUERY_TYPES}
            value={queryType}
            onChange={(v) => update({ queryType: v })}
          />
        </InlineField>
      </InlineFieldRow>

      {queryType === 'trace' && (
        <InlineFieldRow>
          <InlineField label="Trace ID" labelWidth={LABEL_WIDTH} tooltip="The trace to open; template variables work">
            <Input
              id="zerotrace-trace-id"
              width={40}
              value={query.traceId ?? ''}
              placeholder="e.g. 4bf92f3577b34da6a3ce929d0e0e4736 or $traceId"
              onChange={(e) => update({ traceId: e.currentTarget.value }, false)}
              onBlur={() => onRunQuery()}
            />
          </InlineField>
          <InlineField label="Span ID" labelWidth={10} tooltip="Assemble the trace around this span (when no trace id)">
            <Input
              id="zerotrace-span-id"
              width={24}
              value={query.spanId ?? ''}
              placeholder="optional"
              onChange={(e) => update({ spanId: e.currentTarget.value }, false)}
              onBlur={() => onRunQuery()}
            />
          </InlineField>
        </InlineFieldRow>
      )}

      {queryType !== 'trace' && (
        <>
          <InlineFieldRow>
            <FilterCombobox
              label="Namespace"
              id="zerotrace-namespace"
              value={query.namespace}
              placeholder="any namespace"
              tooltip="Only spans of this namespace"
              load={loadNamespaces}
              onChange={(v) => update({ namespace: v, service: '', workload: '', endpoint: '' })}
            />
            <FilterCombobox
              label="Service"
              id="zerotrace-service"
              value={query.service}
              placeholder="any service"
              tooltip="Only spans of this service (client or server side)"
              load={loadServices}
              onChange={(v) => update({ service: v, endpoint: '' })}
            />
            <FilterCombobox
              label="Workload"
              id="zerotrace-workload"
              value={query.workload}
              placeholder="any workload"
              tooltip="Only spans of this Kubernetes workload (Deployment, StatefulSet, DaemonSet, CronJob…)"
              load={loadWorkloads}
              onChange={(v) => update({ workload: v })}
            />
          </InlineFieldRow>
          <InlineFieldRow>
            <FilterCombobox
              label="Protocol"
              id="zerotrace-protocol"
              value={query.protocol}
              placeholder="any protocol"
              tooltip="L7 protocol: http, grpc, mysql, redis…"
              load={loadProtocols}
              onChange={(v) => update({ protocol: v })}
            />
            <FilterCombobox
              label="Endpoint"
              id="zerotrace-endpoint"
              value={query.endpoint}
              placeholder="any endpoint"
              tooltip="Normalised resource, e.g. GET /reviews/{id}"
              load={loadEndpoints}
              onChange={(v) => update({ endpoint: v })}
            />
          </InlineFieldRow>
          <InlineFieldRow>
            {ATTRIBUTE_FILTERS.map((f) => (
              <TextFilter
                key={f.key}
                label={f.label}
                id={`zerotrace-${f.key}`}
                value={query[f.key]}
                placeholder={f.placeholder}
                tooltip={f.tooltip}
                onChange={(v) => update({ [f.key]: v })}
              />
            ))}
          </InlineFieldRow>
          <InlineFieldRow>
            <DurationInput
              label="Min duration"
              id="zerotrace-min-duration"
              value={query.minDuration}
              tooltip='Only calls at least this long, e.g. "100ms", "1.5s"'
              onChange={(v) => update({ minDuration: v })}
            />
            <DurationInput
              label="Max duration"
              id="zerotrace-max-duration"
              value={query.maxDuration}
              tooltip='Only calls at most this long, e.g. "2s"'
              onChange={(v) => update({ maxDuration: v })}
            />
          </InlineFieldRow>
          {queryType === 'metrics' && (
            <InlineFieldRow>
              <InlineField label="Metric" labelWidth={LABEL_WIDTH} tooltip="Per service, from server-side calls">
                <RadioButtonGroup<Metric>
                  options={METRICS}
                  value={query.metric ?? 'rate'}
                  onChange={(v) => update({ metric: v })}
                />
              </InlineField>
              <InlineField label="Exemplars" labelWidth={12} tooltip="Mark the slowest call of each interval">
                <InlineSwitch
                  id="zerotrace-exemplars"
                  value={query.exemplars ?? true}
                  onChange={(e) => update({ exemplars: e.currentTarget.checked })}
                />
              </InlineField>
            </InlineFieldRow>
          )}
          {queryType === 'search' && (
            <InlineFieldRow>
              <InlineField label="Rows" labelWidth={LABEL_WIDTH}>
                <RadioButtonGroup<TableType>
                  options={TABLE_TYPES}
                  value={query.tableType ?? 'traces'}
                  onChange={(v) => update({ tableType: v })}
                />
              </InlineField>
              <InlineField label="Status" labelWidth={8}>
                <RadioButtonGroup<ResponseStatus>
                  options={STATUSES}
                  value={(one(query.status as Filter | undefined) ?? '') as ResponseStatus}
                  onChange={(v) => update({ status: v })}
                />
              </InlineField>
              <InlineField
                label="Limit"
                labelWidth={8}
                invalid={limitInvalid}
                error={limitInvalid ? 'A positive whole number' : undefined}
              >
                <Input
                  id="zerotrace-limit"
                  width={8}
                  type="number"
                  value={limit}
                  onChange={(e) => setLimit(e.currentTarget.value)}
                  onBlur={() => {
                    if (!limitInvalid) {
                      const n = limit.trim() === '' ? DEFAULT_LIMIT : limitNum;
                      if (n !== query.limit) {
                        update({ limit: n });
                      }
                    }
                  }}
                />
              </InlineField>
            </InlineFieldRow>
          )}
        </>
      )}
    </div>
  );
}
