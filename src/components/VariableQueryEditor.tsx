import React from 'react';
import { QueryEditorProps } from '@grafana/data';
import { InlineField, InlineFieldRow, Input, RadioButtonGroup } from '@grafana/ui';

import type { DataSource } from '../datasource';
import { ResourceName, VariableDataQuery, ZerotraceOptions, ZerotraceQuery, ZerotraceVariableQuery } from '../types';

type Props = QueryEditorProps<DataSource, ZerotraceQuery, ZerotraceOptions, VariableDataQuery>;

const RESOURCE_OPTIONS: Array<{ label: string; value: ResourceName; description: string }> = [
  { label: 'Namespaces', value: 'namespaces', description: 'Every namespace with spans' },
  { label: 'Services', value: 'services', description: 'Services, of a namespace if given' },
  { label: 'Workloads', value: 'workloads', description: 'Kubernetes workloads, of a namespace if given' },
  { label: 'Endpoints', value: 'endpoints', description: 'Endpoints, of a namespace and service if given' },
  { label: 'Protocols', value: 'protocols', description: 'L7 protocols seen' },
];

/** Turns what a dashboard stored (the text form of older dashboards, or the object form) into the object form. */
function normalise(query: ZerotraceVariableQuery | string | undefined): ZerotraceVariableQuery {
  if (!query) {
    return { resource: 'services' };
  }
  if (typeof query === 'string') {
    const m = /^\s*(\w+)\s*(?:\(([^)]*)\))?\s*$/.exec(query);
    const args = m?.[2]?.split(',').map((a) => a.trim()) ?? [];
    const resource = RESOURCE_OPTIONS.find((o) => o.value === m?.[1])?.value ?? 'services';
    return { resource, namespace: args[0] || undefined, service: args[1] || undefined };
  }
  return query;
}

/**
 * The variable editor: which resource lists the values, filtered by a
 * namespace and a service (template variables such as $namespace work).
 */
export function VariableQueryEditor({ query, onChange }: Props) {
  const q = normalise(query as ZerotraceVariableQuery | string | undefined);
  const set = (patch: Partial<ZerotraceVariableQuery>) => onChange({ refId: 'ZerotraceVariable', ...q, ...patch });
  const usesNamespace = q.resource === 'services' || q.resource === 'workloads' || q.resource === 'endpoints';
  return (
    <InlineFieldRow>
      <InlineField label="Values of" labelWidth={14}>
        <RadioButtonGroup<ResourceName>
          options={RESOURCE_OPTIONS}
          value={q.resource}
          onChange={(resource) => set({ resource })}
        />
      </InlineField>
      {usesNamespace && (
        <InlineField label="Namespace" labelWidth={12} tooltip="Only values of this namespace; e.g. $namespace">
          <Input
            aria-label="Variable namespace"
            width={24}
            defaultValue={q.namespace ?? ''}
            placeholder="any namespace"
            onBlur={(e) => set({ namespace: e.currentTarget.value.trim() || undefined })}
          />
        </InlineField>
      )}
      {q.resource === 'endpoints' && (
        <InlineField label="Service" labelWidth={10} tooltip="Only endpoints of this service; e.g. $service">
          <Input
            aria-label="Variable service"
            width={24}
            defaultValue={q.service ?? ''}
            placeholder="any service"
            onBlur={(e) => set({ service: e.currentTarget.value.trim() || undefined })}
          />
        </InlineField>
      )}
    </InlineFieldRow>
  );
}
