import React, { useState } from 'react';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { dateTime } from '@grafana/data';

import { QueryEditor } from './QueryEditor';
import { DataSource } from '../datasource';
import { ZerotraceQuery } from '../types';
import { fakeBackend, newDataSource, resourceUrl } from '../testutil';

/** Renders the editor with state, the way a panel does, recording changes and runs. */
function Harness({
  ds,
  initial,
  seen,
  runs,
}: {
  ds: DataSource;
  initial: ZerotraceQuery;
  seen: ZerotraceQuery[];
  runs: { inc: () => void };
}) {
  const [query, setQuery] = useState(initial);
  return (
    <QueryEditor
      datasource={ds}
      query={query}
      onChange={(q) => {
        seen.push(q);
        setQuery(q);
      }}
      onRunQuery={runs.inc}
    />
  );
}

function setup(initial: ZerotraceQuery) {
  const backend = fakeBackend({
    [resourceUrl('namespaces')]: () => ['bookinfo', 'istio-system'],
    [resourceUrl('services')]: (req) =>
      String(req.url).includes('namespace=bookinfo') || req.params?.namespace === 'bookinfo'
        ? ['details', 'productpage', 'ratings', 'reviews']
        : ['istiod'],
    [resourceUrl('protocols')]: () => ['http', 'grpc'],
    [resourceUrl('endpoints')]: () => ['GET /details/{id}', 'GET /reviews/{id}'],
  });
  const seen: ZerotraceQuery[] = [];
  const runs = { n: 0, inc: () => runs.n++ };
  const ds = newDataSource();
  render(<Harness ds={ds} initial={initial} seen={seen} runs={runs} />);
  return { backend, seen, runs };
}

describe('QueryEditor', () => {
  it('switches query type and shows the fields of each', async () => {
    const { seen, runs } = setup({ refId: 'A', queryType: 'search' });
    expect(screen.getByLabelText('Namespace')).toBeInTheDocument();
    expect(screen.getByText('Min duration')).toBeInTheDocument();
    expect(screen.queryByText('Trace ID')).toBeNull();

    fireEvent.click(screen.getByLabelText('Trace'));
    expect(seen[seen.length - 1].queryType).toBe('trace');
    expect(runs.n).toBe(1);
    expect(screen.getByText('Trace ID')).toBeInTheDocument();
    expect(screen.queryByLabelText('Namespace')).toBeNull();

    fireEvent.click(screen.getByLabelText('Service map'));
    expect(seen[seen.length - 1].queryType).toBe('serviceMap');
    expect(screen.getByLabelText('Namespace')).toBeInTheDocument();
    expect(screen.getByText('Max duration')).toBeInTheDocument();
    expect(screen.queryByText('Rows')).toBeNull();
    expect(screen.queryByText('Metric')).toBeNull();

    fireEvent.click(screen.getByLabelText('Metrics'));
    expect(screen.getByText('Metric')).toBeInTheDocument();
  });

  it('chooses the metric and the exemplars of a metrics query', () => {
    const { seen, runs } = setup({ refId: 'A', queryType: 'metrics' });
    fireEvent.click(screen.getByLabelText('p99'));
    expect(seen[seen.length - 1].metric).toBe('p99');
    fireEvent.click(screen.getByLabelText('Error ratio'));
    expect(seen[seen.length - 1].metric).toBe('errorRatio');
    fireEvent.click(document.getElementById('zerotrace-exemplars')!);
    expect(seen[seen.length - 1].exemplars).toBe(false);
    expect(runs.n).toBe(3);
  });

  it('sets max duration, rows per trace or span, and attribute filters as lists', () => {
    const { seen } = setup({ refId: 'A', queryType: 'search' });
    const max = document.getElementById('zerotrace-max-duration') as HTMLInputElement;
    fireEvent.change(max, { target: { value: '1.5s' } });
    fireEvent.blur(max);
    expect(seen[seen.length - 1].maxDuration).toBe('1.5s');
    fireEvent.click(screen.getByLabelText('Spans'));
    expect(seen[seen.length - 1].tableType).toBe('spans');
    const pod = screen.getByLabelText('Pod');
    fireEvent.change(pod, { target: { value: 'reviews-v1, ratings-v1' } });
    fireEvent.blur(pod);
    expect(seen[seen.length - 1].pod).toEqual(['reviews-v1', 'ratings-v1']);
    const node = screen.getByLabelText('Node');
    fireEvent.change(node, { target: { value: '$node' } });
    fireEvent.blur(node);
    expect(seen[seen.length - 1].node).toBe('$node');
    const code = screen.getByLabelText('Response code');
    fireEvent.change(code, { target: { value: '5xx' } });
    fireEvent.blur(code);
    expect(seen[seen.length - 1]).toMatchObject({
      responseCode: '5xx',
      pod: ['reviews-v1', 'ratings-v1'],
      maxDuration: '1.5s',
    });
  });

  it("asks the resources for the panel's time range", async () => {
    const user = userEvent.setup();
    const backend = fakeBackend({ [resourceUrl('namespaces')]: () => ['bookinfo'] });
    const range = {
      from: dateTime(1_700_000_000_000),
      to: dateTime(1_700_000_900_000),
      raw: { from: 'now-15m', to: 'now' },
    };
    render(
      <QueryEditor
        datasource={newDataSource()}
        query={{ refId: 'A', queryType: 'search' }}
        onChange={() => {}}
        onRunQuery={() => {}}
        range={range}
      />
    );
    await user.click(screen.getByLabelText('Namespace'));
    await waitFor(() => expect(backend.requests.length).toBeGreaterThan(0));
    expect(backend.requests[0].params).toEqual({ from: '1700000000000', to: '1700000900000' });
  });

  it('edits the trace id and runs the query on blur', () => {
    const { seen, runs } = setup({ refId: 'A', queryType: 'trace' });
    const input = document.getElementById('zerotrace-trace-id') as HTMLInputElement;
    fireEvent.change(input, { target: { value: '4bf92f3577b34da6a3ce929d0e0e4736' } });
    expect(seen[seen.length - 1].traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(runs.n).toBe(0);
    fireEvent.blur(input);
    expect(runs.n).toBe(1);
  });

  it('validates min duration and limit before changing the query', () => {
    const { seen } = setup({ refId: 'A', queryType: 'search', limit: 20 });
    const dur = document.getElementById('zerotrace-min-duration') as HTMLInputElement;
    fireEvent.change(dur, { target: { value: 'fast' } });
    fireEvent.blur(dur);
    expect(screen.getByText('Use a duration like 100ms, 1.5s or 2m')).toBeInTheDocument();
    expect(seen.some((q) => q.minDuration === 'fast')).toBe(false);
    fireEvent.change(dur, { target: { value: '250ms' } });
    fireEvent.blur(dur);
    expect(seen[seen.length - 1].minDuration).toBe('250ms');

    const limit = document.getElementById('zerotrace-limit') as HTMLInputElement;
    fireEvent.change(limit, { target: { value: '-3' } });
    fireEvent.blur(limit);
    expect(screen.getByText('A positive whole number')).toBeInTheDocument();
    fireEvent.change(limit, { target: { value: '50' } });
    fireEvent.blur(limit);
    expect(seen[seen.length - 1].limit).toBe(50);
  });

  it('sets the status filter', () => {
    const { seen } = setup({ refId: 'A', queryType: 'search' });
    fireEvent.click(screen.getByLabelText('Server error'));
    expect(seen[seen.length - 1].status).toBe('server_error');
  });

  // The option list itself is virtualised and does not render in jsdom, so these tests check what
  // the editor controls: which resource it loads with which filters, and what a chosen value does.
  it('loads namespaces from the backend and clears dependent filters on change', async () => {
    const user = userEvent.setup();
    const { backend, seen, runs } = setup({ refId: 'A', queryType: 'search', service: 'old', endpoint: 'GET /old' });
    const input = screen.getByLabelText('Namespace');
    await user.click(input);
    await waitFor(() => expect(backend.requests.some((r) => r.url.endsWith('/resources/namespaces'))).toBe(true));
    await user.type(input, 'istio-system');
    // let the debounced loader filter the options to the typed text, then take it
    await new Promise((r) => setTimeout(r, 500));
    await user.keyboard('{Enter}');
    await waitFor(() => expect(seen.length).toBeGreaterThan(0));
    expect(seen[seen.length - 1]).toMatchObject({ namespace: 'istio-system', service: '', endpoint: '' });
    expect(runs.n).toBeGreaterThan(0);
  });

  it('asks for services and endpoints of the chosen namespace and service', async () => {
    const user = userEvent.setup();
    const { backend } = setup({ refId: 'A', queryType: 'search', namespace: 'bookinfo', service: 'reviews' });
    await user.click(screen.getByLabelText('Service'));
    await waitFor(() => expect(backend.requests.some((r) => r.url.includes('/resources/services'))).toBe(true));
    const svc = backend.requests.find((r) => r.url.includes('/resources/services'))!;
    expect(JSON.stringify(svc)).toContain('bookinfo');
    await user.click(screen.getByLabelText('Endpoint'));
    await waitFor(() => expect(backend.requests.some((r) => r.url.includes('/resources/endpoints'))).toBe(true));
    const ep = JSON.stringify(backend.requests.find((r) => r.url.includes('/resources/endpoints')));
    expect(ep).toContain('bookinfo');
    expect(ep).toContain('reviews');
  });

  it('shows an error when a resource cannot be loaded', async () => {
    const user = userEvent.setup();
    fakeBackend({});
    const seen: ZerotraceQuery[] = [];
    render(
      <Harness
        ds={newDataSource()}
        initial={{ refId: 'A', queryType: 'search' }}
        seen={seen}
        runs={{ inc: () => {} }}
      />
    );
    await user.click(screen.getByLabelText('Protocol'));
    expect(await screen.findByText(/loading protocol values/)).toBeInTheDocument();
  });
});
