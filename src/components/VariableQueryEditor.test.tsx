import React from 'react';
import { CoreApp, DataQueryRequest, dateTime } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { lastValueFrom } from 'rxjs';

import { VariableQueryEditor } from './VariableQueryEditor';
import { ZerotraceVariableSupport } from '../datasource';
import { fakeBackend, newDataSource, resourceUrl, TestTemplateSrv } from '../testutil';
import { VariableDataQuery } from '../types';

describe('variables', () => {
  it('edits the resource and its filters', async () => {
    const user = userEvent.setup();
    const seen: VariableDataQuery[] = [];
    const ds = newDataSource();
    const { rerender } = render(
      <VariableQueryEditor
        datasource={ds}
        query={'services($namespace)' as never}
        onChange={(q) => seen.push(q)}
        onRunQuery={() => {}}
      />
    );
    // An older dashboard's text query is shown in the object form.
    expect(screen.getByLabelText('Services')).toBeChecked();
    expect(screen.getByLabelText('Variable namespace')).toHaveValue('$namespace');
    await user.click(screen.getByLabelText('Endpoints'));
    expect(seen[seen.length - 1]).toMatchObject({ resource: 'endpoints', namespace: '$namespace' });
    rerender(
      <VariableQueryEditor
        datasource={ds}
        query={seen[seen.length - 1]}
        onChange={(q) => seen.push(q)}
        onRunQuery={() => {}}
      />
    );
    const svc = screen.getByLabelText('Variable service');
    fireEvent.change(svc, { target: { value: '$service' } });
    fireEvent.blur(svc);
    expect(seen[seen.length - 1]).toMatchObject({
      resource: 'endpoints',
      namespace: '$namespace',
      service: '$service',
    });
  });

  it('lists values from the resources over the dashboard time range', async () => {
    const backend = fakeBackend({ [resourceUrl('services')]: () => ['details', 'reviews'] });
    const ds = newDataSource(new TestTemplateSrv([{ name: 'namespace', current: ['bookinfo'] }]));
    expect(ds.variables).toBeInstanceOf(ZerotraceVariableSupport);
    const range = {
      from: dateTime(1_700_000_000_000),
      to: dateTime(1_700_000_060_000),
      raw: { from: 'now-1m', to: 'now' },
    };
    const rsp = await lastValueFrom(
      (ds.variables as ZerotraceVariableSupport).query({
        targets: [{ refId: 'V', resource: 'services', namespace: '$namespace' }],
        range,
        scopedVars: {},
        app: CoreApp.Dashboard,
      } as unknown as DataQueryRequest<VariableDataQuery>)
    );
    expect(rsp.data).toEqual([
      { text: 'details', value: 'details' },
      { text: 'reviews', value: 'reviews' },
    ]);
    expect(backend.requests[0].params).toEqual({ namespace: 'bookinfo', from: '1700000000000', to: '1700000060000' });
  });
});
