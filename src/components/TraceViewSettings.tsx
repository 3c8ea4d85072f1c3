import React from 'react';
import { DataSourceInstanceSettings, DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { DataSourcePicker } from '@grafana/runtime';
import {
  Button,
  Field,
  FieldSet,
  IconButton,
  InlineField,
  InlineFieldRow,
  InlineSwitch,
  Input,
  RadioButtonGroup,
  Stack,
  Text,
} from '@grafana/ui';

import {
  LinkTag,
  SpanBarOptions,
  TraceToMetricQuery,
  TraceViewOptions,
  ZerotraceOptions,
  ZerotraceSecureOptions,
} from '../types';

type Props = DataSourcePluginOptionsEditorProps<ZerotraceOptions, ZerotraceSecureOptions>;

const LABEL = 26;

/** Sets one key of jsonData, leaving the rest. */
function useSetter({ options, onOptionsChange }: Props) {
  return <K extends keyof TraceViewOptions>(key: K, value: TraceViewOptions[K]) =>
    onOptionsChange({ ...options, jsonData: { ...options.jsonData, [key]: value } });
}

/** The span attributes carried into a linked query, each optionally renamed there ("as"). */
function TagsEditor({ id, tags, onChange }: { id: string; tags: LinkTag[]; onChange: (t: LinkTag[]) => void }) {
  const set = (i: number, patch: Partial<LinkTag>) => onChange(tags.map((t, j) => (j === i ? { ...t, ...patch } : t)));
  return (
    <Stack direction="column" gap={0.5}>
      {tags.map((t, i) => (
        <Stack key={i} direction="row" gap={1}>
          <Input
            aria-label={`${id} tag ${i + 1}`}
            width={24}
            value={t.key}
            placeholder="k8s.pod.name"
            onChange={(e) => set(i, { key: e.currentTarget.value })}
          />
          <Input
            aria-label={`${id} tag ${i + 1} as`}
            width={20}
            value={t.value ?? ''}
            placeholder="as (optional)"
            onChange={(e) => set(i, { value: e.currentTarget.value || undefined })}
          />
          <IconButton
            name="trash-alt"
            tooltip={`Remove ${id} tag ${i + 1}`}
            onClick={() => onChange(tags.filter((_, j) => j !== i))}
          />
        </Stack>
      ))}
      <div>
        <Button variant="secondary" size="sm" icon="plus" onClick={() => onChange([...tags, { key: '' }])}>
          Add {id} tag
        </Button>
      </div>
    </Stack>
  );
}

function Shift({
  id,
  label,
  value,
  onChange,
}: {
  id: string;
  label: string;
  value?: string;
  onChange: (v?: string) => void;
}) {
  return (
    <InlineField label={label} labelWidth={LABEL} tooltip="Shifts the linked query's time range, e.g. -1m, 30s">
      <Input
        aria-label={`${id} ${label}`}
        width={12}
        value={value ?? ''}
        placeholder="0"
        onChange={(e) => onChange(e.currentTarget.value.trim() || undefined)}
      />
    </InlineField>
  );
}

function Picker({
  id,
  uid,
  kind,
  onChange,
}: {
  id: string;
  uid?: string;
  kind: { logs?: boolean; metrics?: boolean; type?: string };
  onChange: (uid?: string) => void;
}) {
  return (
    <InlineField label="Data source" labelWidth={LABEL} tooltip={`The ${id} data source the trace view links to`}>
      <DataSourcePicker
        inputId={`zerotrace-${id}-datasource`}
        {...kind}
        current={uid}
        noDefault
        width={40}
        onChange={(ds: DataSourceInstanceSettings) => onChange(ds.uid)}
        onClear={() => onChange(undefined)}
      />
    </InlineField>
  );
}

/** Trace to logs: jsonData.tracesToLogsV2, as Grafana's trace view reads it. */
export function TracesToLogsSettings(props: Props) {
  const set = useSetter(props);
  const o = props.options.jsonData.tracesToLogsV2 ?? {};
  const up = (patch: Partial<typeof o>) => set('tracesToLogsV2', { ...o, ...patch });
  return (
    <FieldSet label="Trace to logs">
      <Text element="p" color="secondary">
        A span&apos;s &quot;Logs for this span&quot; link: a query on the logs data source over the span&apos;s time,
        filtered by its tags (e.g. <code>k8s.pod.name</code>, <code>k8s.namespace.name</code>) and, if the logs carry
        them, by its trace id and its span id (16 hex digits).
      </Text>
      <Picker id="logs" uid={o.datasourceUid} kind={{ logs: true }} onChange={(uid) => up({ datasourceUid: uid })} />
      <Field label="Tags" description="Span and service tags to filter the logs by">
        <TagsEditor id="logs" tags={o.tags ?? []} onChange={(tags) => up({ tags })} />
      </Field>
      <InlineFieldRow>
        <Shift
          id="logs"
          label="Span start time shift"
          value={o.spanStartTimeShift}
          onChange={(v) => up({ spanStartTimeShift: v })}
        />
        <Shift
          id="logs"
          label="Span end time shift"
          value={o.spanEndTimeShift}
          onChange={(v) => up({ spanEndTimeShift: v })}
        />
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField label="Filter by trace ID" labelWidth={LABEL}>
          <InlineSwitch
            id="zerotrace-logs-trace-id"
            value={o.filterByTraceID ?? false}
            onChange={(e) => up({ filterByTraceID: e.currentTarget.checked })}
          />
        </InlineField>
        <InlineField label="Filter by span ID" labelWidth={LABEL}>
          <InlineSwitch
            id="zerotrace-logs-span-id"
            value={o.filterBySpanID ?? false}
            onChange={(e) => up({ filterBySpanID: e.currentTarget.checked })}
          />
        </InlineField>
      </InlineFieldRow>
      <CustomQuery
        id="logs"
        custom={o.customQuery}
        query={o.query}
        onChange={(customQuery, query) => up({ customQuery, query })}
      />
    </FieldSet>
  );
}

function CustomQuery({
  id,
  custom,
  query,
  onChange,
}: {
  id: string;
  custom?: boolean;
  query?: string;
  onChange: (custom: boolean, query?: string) => void;
}) {
  return (
    <InlineFieldRow>
      <InlineField
        label="Use custom query"
        labelWidth={LABEL}
        tooltip="Write the linked query; ${__span.tags.x}, ${__trace.traceId}, ${__span.spanId} and ${__tags} are replaced"
      >
        <InlineSwitch
          id={`zerotrace-${id}-custom`}
          value={custom ?? false}
          onChange={(e) => onChange(e.currentTarget.checked, query)}
        />
      </InlineField>
      {custom && (
        <InlineField label="Query" labelWidth={10}>
          <Input
            aria-label={`${id} query`}
            width={60}
            value={query ?? ''}
            placeholder={'{${__tags}} |= "${__span.spanId}"'}
            onChange={(e) => onChange(true, e.currentTarget.value)}
          />
        </InlineField>
      )}
    </InlineFieldRow>
  );
}

/** Trace to metrics: jsonData.tracesToMetrics. */
export function TracesToMetricsSettings(props: Props) {
  const set = useSetter(props);
  const o = props.options.jsonData.tracesToMetrics ?? {};
  const up = (patch: Partial<typeof o>) => set('tracesToMetrics', { ...o, ...patch });
  const queries = o.queries ?? [];
  const setQuery = (i: number, patch: Partial<TraceToMetricQuery>) =>
    up({ queries: queries.map((q, j) => (j === i ? { ...q, ...patch } : q)) });
  return (
    <FieldSet label="Trace to metrics">
      <Text element="p" color="secondary">
        Links from a span to metrics queries (e.g. PromQL) over the span&apos;s time; <code>{'${__tags}'}</code> becomes
        the tags below as label matchers.
      </Text>
      <Picker
        id="metrics"
        uid={o.datasourceUid}
        kind={{ metrics: true }}
        onChange={(uid) => up({ datasourceUid: uid })}
      />
      <Field label="Tags">
        <TagsEditor id="metrics" tags={o.tags ?? []} onChange={(tags) => up({ tags })} />
      </Field>
      <InlineFieldRow>
        <Shift
          id="metrics"
          label="Span start time shift"
          value={o.spanStartTimeShift}
          onChange={(v) => up({ spanStartTimeShift: v })}
        />
        <Shift
          id="metrics"
          label="Span end time shift"
          value={o.spanEndTimeShift}
          onChange={(v) => up({ spanEndTimeShift: v })}
        />
      </InlineFieldRow>
      <Field label="Queries">
        <Stack direction="column" gap={0.5}>
          {queries.map((q, i) => (
            <Stack key={i} direction="row" gap={1}>
              <Input
                aria-label={`metrics query ${i + 1} name`}
                width={20}
                value={q.name ?? ''}
                placeholder="Link name"
                onChange={(e) => setQuery(i, { name: e.currentTarget.value })}
              />
              <Input
                aria-label={`metrics query ${i + 1}`}
                width={60}
                value={q.query ?? ''}
                placeholder="sum(rate(http_requests_total{${__tags}}[5m]))"
                onChange={(e) => setQuery(i, { query: e.currentTarget.value })}
              />
              <IconButton
                name="trash-alt"
                tooltip={`Remove metrics query ${i + 1}`}
                onClick={() => up({ queries: queries.filter((_, j) => j !== i) })}
              />
            </Stack>
          ))}
          <div>
            <Button
              variant="secondary"
              size="sm"
              icon="plus"
              onClick={() => up({ queries: [...queries, { name: '', query: '' }] })}
            >
              Add metrics query
            </Button>
          </div>
        </Stack>
      </Field>
    </FieldSet>
  );
}

/** Trace to profiles: jsonData.tracesToProfiles (a Pyroscope data source). */
export function TracesToProfilesSettings(props: Props) {
  const set = useSetter(props);
  const o = props.options.jsonData.tracesToProfiles ?? {};
  const up = (patch: Partial<typeof o>) => set('tracesToProfiles', { ...o, ...patch });
  return (
    <FieldSet label="Trace to profiles">
      <Picker
        id="profiles"
        uid={o.datasourceUid}
        kind={{ type: 'grafana-pyroscope-datasource' }}
        onChange={(uid) => up({ datasourceUid: uid })}
      />
      <Field label="Tags">
        <TagsEditor id="profiles" tags={o.tags ?? []} onChange={(tags) => up({ tags })} />
      </Field>
      <InlineField label="Profile type" labelWidth={LABEL} tooltip="e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds">
        <Input
          aria-label="profiles profile type"
          width={50}
          value={o.profileTypeId ?? ''}
          onChange={(e) => up({ profileTypeId: e.currentTarget.value || undefined })}
        />
      </InlineField>
      <CustomQuery
        id="profiles"
        custom={o.customQuery}
        query={o.query}
        onChange={(customQuery, query) => up({ customQuery, query })}
      />
    </FieldSet>
  );
}

const SPAN_BAR: Array<{ label: string; value: NonNullable<SpanBarOptions['type']> }> = [
  { label: 'None', value: 'None' },
  { label: 'Duration', value: 'Duration' },
  { label: 'Tag', value: 'Tag' },
];

/** Span bar (jsonData.spanBar) and node graph (jsonData.nodeGraph) of the trace view. */
export function TraceDisplaySettings(props: Props) {
  const set = useSetter(props);
  const bar = props.options.jsonData.spanBar ?? {};
  return (
    <FieldSet label="Trace view">
      <InlineFieldRow>
        <InlineField
          label="Span bar label"
          labelWidth={LABEL}
          tooltip="What the trace view writes beside each span bar"
        >
          <RadioButtonGroup
            options={SPAN_BAR}
            value={bar.type ?? 'Duration'}
            onChange={(type) => set('spanBar', { ...bar, type })}
          />
        </InlineField>
        {bar.type === 'Tag' && (
          <InlineField label="Tag" labelWidth={8}>
            <Input
              aria-label="Span bar tag"
              width={24}
              value={bar.tag ?? ''}
              placeholder="response_code"
              onChange={(e) => set('spanBar', { ...bar, tag: e.currentTarget.value })}
            />
          </InlineField>
        )}
      </InlineFieldRow>
      <InlineField label="Node graph" labelWidth={LABEL} tooltip="Show the trace's service graph above the trace view">
        <InlineSwitch
          id="zerotrace-node-graph"
          value={props.options.jsonData.nodeGraph?.enabled ?? false}
          onChange={(e) => set('nodeGraph', { enabled: e.currentTarget.checked })}
        />
      </InlineField>
    </FieldSet>
  );
}

/** Every trace-view section of the settings page. */
export function TraceViewSettings(props: Props) {
  return (
    <>
      <TracesToLogsSettings {...props} />
      <TracesToMetricsSettings {...props} />
      <TracesToProfilesSettings {...props} />
      <TraceDisplaySettings {...props} />
    </>
  );
}
