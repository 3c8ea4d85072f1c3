import React, { useState } from 'react';
import { DataSourceSettings } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';

import { ConfigEditor } from './ConfigEditor';
import { fakeDataSources } from '../testutil';
import { ZerotraceOptions } from '../types';

function settings(jsonData: ZerotraceOptions): DataSourceSettings<ZerotraceOptions> {
  return {
    id: 1,
    uid: 'zt',
    name: 'Zerotrace',
    type: 'zerotrace-tracing-datasource',
    jsonData,
  } as unknown as DataSourceSettings<ZerotraceOptions>;
}

/** Renders the editor with state, the way Grafana's settings page does, and records every change. */
function Harness({ initial, seen }: { initial: ZerotraceOptions; seen: ZerotraceOptions[] }) {
  const [options, setOptions] = useState(settings(initial));
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

beforeEach(() => fakeDataSources([]));

describe('ConfigEditor', () => {
  it('shows the default data directory when none is configured', () => {
    render(<Harness initial={{}} seen={[]} />);
    expect(screen.getByLabelText('Data directory 1')).toHaveValue('/var/lib/zerotrace');
    expect(screen.queryByLabelText('Data directory 2')).toBeNull();
  });

  it('edits, adds and removes data directories', () => {
    const seen: ZerotraceOptions[] = [];
    render(<Harness initial={{ dataDirs: ['/var/lib/zerotrace/node1'] }} seen={seen} />);

    fireEvent.click(screen.getByRole('button', { name: /add directory/i }));
    const second = screen.getByLabelText('Data directory 2');
    fireEvent.change(second, { target: { value: '  /var/lib/zerotrace/node2 ' } });
    fireEvent.blur(second);
    expect(seen[seen.length - 1].dataDirs).toEqual(['/var/lib/zerotrace/node1', '/var/lib/zerotrace/node2']);

    fireEvent.click(screen.getByRole('button', { name: 'Remove data directory 1' }));
    expect(seen[seen.length - 1].dataDirs).toEqual(['/var/lib/zerotrace/node2']);
    expect(screen.getByLabelText('Data directory 1')).toHaveValue('/var/lib/zerotrace/node2');
  });

  it('flags relative and duplicate paths', () => {
    render(<Harness initial={{ dataDirs: ['data/node1', '/d', '/d'] }} seen={[]} />);
    expect(screen.getByText('Use an absolute path')).toBeInTheDocument();
    expect(screen.getAllByText('Listed twice')).toHaveLength(2);
  });

  it('never removes the last directory', () => {
    render(<Harness initial={{ dataDirs: ['/only'] }} seen={[]} />);
    expect(screen.getByRole('button', { name: 'Remove data directory 1' })).toBeDisabled();
  });
});
