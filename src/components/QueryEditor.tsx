import React, { useCallback, useState } from 'react';
import { QueryEditorProps } from '@grafana/data';
import { Combobox, ComboboxOption, InlineField, InlineFieldRow, Input, RadioButtonGroup } from '@grafana/ui';

import { DataSource } from '../datasource';
import {
  DEFAULT_LIMIT,
  isValidDuration,
  QUERY_TYPES,
  ResponseStatus,
  STATUSES,
  ZerotraceOptions,
  ZerotraceQuery,
} from '../types';

type Props = QueryEditorProps<DataSource, ZerotraceQuery, ZerotraceOptions>;

const LABEL_WIDTH = 14;

interface FilterProps {
  label: string;
  id: string;
  value?: string;
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
        value={value || null}
        options={options}
        onChange={(o) => onChange(o?.value ?? '')}
      />
    </InlineField>
  );
}

export function QueryEditor({ datasource, query, onChange, onRunQuery }: Props) {
  const queryType = query.queryType ?? 'search';
  const { namespace, service } = query;
  const loadNamespaces = useCallback(() => datasource.getResourceValues('namespaces'), [datasource]);
  const loadProtocols = useCallback(() => datasource.getResourceValues('protocols'), [datasource]);
  const loadServices = useCallback(
    () => datasource.getResourceValues('services', { namespace }),
    [datasource, namespace]
  );
  const loadWorkloads = useCallback(
    () => datasource.getResourceValues('workloads', { namespace }),
    [datasource, namespace]
  );
  const loadEndpoints = useCallback(
    () => datasource.getResourceValues('endpoints', { namespace, service }),
    [datasource, namespace, service]
  );
  const [minDuration, setMinDuration] = useState(query.minDuration ?? '');
  const [limit, setLimit] = useState(String(query.limit ?? DEFAULT_LIMIT));

  const update = (patch: Partial<ZerotraceQuery>, run = true) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  const durationInvalid = !isValidDuration(minDuration.trim());
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
          {queryType === 'search' && (
            <InlineFieldRow>
              <InlineField label="Status" labelWidth={LABEL_WIDTH}>
                <RadioButtonGroup<ResponseStatus>
                  options={STATUSES}
                  value={query.status ?? ''}
                  onChange={(v) => update({ status: v })}
                />
              </InlineField>
              <InlineField
                label="Min duration"
                labelWidth={LABEL_WIDTH}
                tooltip='Only calls at least this long, e.g. "100ms", "1.5s"'
                invalid={durationInvalid}
                error={durationInvalid ? 'Use a duration like 100ms, 1.5s or 2m' : undefined}
              >
                <Input
                  id="zerotrace-min-duration"
                  width={12}
                  value={minDuration}
                  placeholder="e.g. 100ms"
                  onChange={(e) => setMinDuration(e.currentTarget.value)}
                  onBlur={() => {
                    const v = minDuration.trim();
                    if (isValidDuration(v) && v !== (query.minDuration ?? '')) {
                      update({ minDuration: v });
                    }
                  }}
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
