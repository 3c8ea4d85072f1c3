import React, { useState } from 'react';
import { DataSourceSettings } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

import { ConfigEditor } from './ConfigEditor';
import { fakeDataSources } from '../testutil';
import { ZerotraceOptions } from '../types';

function Harness({ initial, seen }: { initial: ZerotraceOptions; seen: ZerotraceOptions[] }) {
  const [options, setOptions] = useState({
    id: 1,
    uid: 'zt',
    name: 'Zerotrace',
    type: 'zerotrace-tracing-datasource',
    jsonData: initial,
  } as unknown as DataSourceSettings<ZerotraceOptions>);
  return (
    <ConfigEditor
      options={options}
      onOptionsChange={(o) => {
        seen.push(o.jsonData);
        setOptions(o);
      }}
    />
  );
}

// The keys and shapes Grafana's trace view reads from a data source's jsonData
// (TraceToLogsOptionsV2, TraceToMetricsOptions, TraceToProfilesOptions,
// SpanBarOptions, NodeGraphOptions): anything else is ignored by Grafana.
const LOGS_KEYS = [
  'customQuery',
  'datasourceUid',
  'filterBySpanID',
  'filterByTraceID',
  'query',
  'spanEndTimeShift',
  'spanStartTimeShift',
  'tags',
];
const METRICS_KEYS = ['datasourceUid', 'queries', 'spanEndTimeShift', 'spanStartTimeShift', 'tags'];
const PROFILES_KEYS = ['customQuery', 'datasourceUid', 'profileTypeId', 'query', 'tags'];

// The real DataSourcePicker and userEvent are slow on a busy machine.
jest.setTimeout(30_000);

describe('trace view settings', () => {
  beforeEach(() =>
    fakeDataSources([
      { uid: 'loki', name: 'Loki', type: 'loki', logs: true },
      { uid: 'prom', name: 'Prometheus', type: 'prometheus', metrics: true },
      { uid: 'pyro', name: 'Pyroscope', type: 'grafana-pyroscope-datasource' },
    ])
  );

  it('writes the trace-to-logs keys Grafana reads', async () => {
    const user = userEvent.setup();
    const seen: ZerotraceOptions[] = [];
    render(<Harness initial={{ dataDirs: ['/d'] }} seen={seen} />);

    // The logs picker lists the logs data sources only.
    await user.click(document.getElementById('zerotrace-logs-datasource')!);
    expect(screen.queryByText('Prometheus')).toBeNull();
    await user.click(await screen.findByText('Loki'));

    await user.click(screen.getByRole('button', { name: /add logs tag/i }));
    fireEvent.change(screen.getByLabelText('logs tag 1'), { target: { value: 'k8s.pod.name' } });
    fireEvent.change(screen.getByLabelText('logs tag 1 as'), { target: { value: 'pod' } });
    await user.click(screen.getByRole('button', { name: /add logs tag/i }));
    fireEvent.change(screen.getByLabelText('logs tag 2'), { target: { value: 'k8s.namespace.name' } });
    fireEvent.change(screen.getByLabelText('logs Span start time shift'), { target: { value: '-1m' } });
    fireEvent.change(screen.getByLabelText('logs Span end time shift'), { target: { value: '1m' } });
    fireEvent.click(document.getElementById('zerotrace-logs-trace-id')!);
    fireEvent.click(document.getElementById('zerotrace-logs-span-id')!);
    fireEvent.click(document.getElementById('zerotrace-logs-custom')!);
    fireEvent.change(screen.getByLabelText('logs query'), { target: { value: '{${__tags}} |= "${__span.spanId}"' } });

    const last = seen[seen.length - 1];
    expect(last.dataDirs).toEqual(['/d']); // the rest of jsonData is kept
    expect(last.tracesToLogsV2).toEqual({
      datasourceUid: 'loki',
      tags: [{ key: 'k8s.pod.name', value: 'pod' }, { key: 'k8s.namespace.name' }],
      spanStartTimeShift: '-1m',
      spanEndTimeShift: '1m',
      filterByTraceID: true,
      filterBySpanID: true,
      customQuery: true,
      query: '{${__tags}} |= "${__span.spanId}"',
    });
    expect(Object.keys(last.tracesToLogsV2!).every((k) => LOGS_KEYS.includes(k))).toBe(true);
  });

  it('writes trace to metrics and profiles, span bar and node graph', async () => {
    const user = userEvent.setup();
    const seen: ZerotraceOptions[] = [];
    render(<Harness initial={{}} seen={seen} />);

    await user.click(document.getElementById('zerotrace-metrics-datasource')!);
    expect(screen.queryByText('Loki')).toBeNull();
    await user.click(await screen.findByText('Prometheus'));
    await user.click(screen.getByRole('button', { name: /add metrics tag/i }));
    fireEvent.change(screen.getByLabelText('metrics tag 1'), { target: { value: 'service.name' } });
    fireEvent.change(screen.getByLabelText('metrics tag 1 as'), { target: { value: 'service' } });
    await user.click(screen.getByRole('button', { name: /add metrics query/i }));
    fireEvent.change(screen.getByLabelText('metrics query 1 name'), { target: { value: 'Request rate' } });
    fireEvent.change(screen.getByLabelText('metrics query 1'), {
      target: { value: 'sum(rate(http_requests_total{${__tags}}[5m]))' },
    });

    await user.click(document.getElementById('zerotrace-profiles-datasource')!);
    await user.click(await screen.findByText('Pyroscope'));
    fireEvent.change(screen.getByLabelText('profiles profile type'), {
      target: { value: 'process_cpu:cpu:nanoseconds:cpu:nanoseconds' },
    });

    fireEvent.click(screen.getByLabelText('Tag'));
    fireEvent.change(screen.getByLabelText('Span bar tag'), { target: { value: 'response_code' } });
    fireEvent.click(document.getElementById('zerotrace-node-graph')!);

    const last = seen[seen.length - 1];
    expect(last.tracesToMetrics).toEqual({
      datasourceUid: 'prom',
      tags: [{ key: 'service.name', value: 'service' }],
      queries: [{ name: 'Request rate', query: 'sum(rate(http_requests_total{${__tags}}[5m]))' }],
    });
    expect(Object.keys(last.tracesToMetrics!).every((k) => METRICS_KEYS.includes(k))).toBe(true);
    expect(last.tracesToProfiles).toEqual({
      datasourceUid: 'pyro',
      profileTypeId: 'process_cpu:cpu:nanoseconds:cpu:nanoseconds',
    });
    expect(Object.keys(last.tracesToProfiles!).every((k) => PROFILES_KEYS.includes(k))).toBe(true);
    expect(last.spanBar).toEqual({ type: 'Tag', tag: 'response_code' });
    expect(last.nodeGraph).toEqual({ enabled: true });
  });

  it('shows what is configured and clears a tag', async () => {
    const user = userEvent.setup();
    const seen: ZerotraceOptions[] = [];
    render(
      <Harness
        initial={{
          tracesToLogsV2: {
            datasourceUid: 'loki',
            tags: [{ key: 'k8s.pod.name', value: 'pod' }],
            filterBySpanID: true,
          },
        }}
        seen={seen}
      />
    );
    expect(screen.getByText('Loki')).toBeInTheDocument();
    expect(screen.getByLabelText('logs tag 1')).toHaveValue('k8s.pod.name');
    await user.click(screen.getByRole('button', { name: 'Remove logs tag 1' }));
    expect(seen[seen.length - 1].tracesToLogsV2).toEqual({ datasourceUid: 'loki', tags: [], filterBySpanID: true });
  });
});
