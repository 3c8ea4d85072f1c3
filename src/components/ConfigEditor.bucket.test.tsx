import React, { useState } from 'react';
import { DataSourceSettings } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';

import { ConfigEditor } from './ConfigEditor';
import { fakeDataSources } from '../testutil';
import { ZerotraceOptions, ZerotraceSecureOptions } from '../types';

type Settings = DataSourceSettings<ZerotraceOptions, ZerotraceSecureOptions>;

function settings(jsonData: ZerotraceOptions, secureJsonFields: Record<string, boolean> = {}): Settings {
  return {
    id: 1,
    uid: 'zt',
    name: 'Zerotrace',
    type: 'zerotrace-tracing-datasource',
    jsonData,
    secureJsonFields,
  } as unknown as Settings;
}

/** Renders the editor with state, as Grafana's settings page does, and records every change. */
function Harness({ initial, seen }: { initial: Settings; seen: Settings[] }) {
  const [options, setOptions] = useState(initial);
  return (
    <ConfigEditor
      options={options}
      onOptionsChange={(o) => {
        seen.push(o);
        setOptions(o);
      }}
    />
  );
}

beforeEach(() => fakeDataSources([]));

describe('ConfigEditor bucket storage', () => {
  it('switches from directories to the bucket fields', () => {
    const seen: Settings[] = [];
    render(<Harness initial={settings({})} seen={seen} />);
    expect(screen.getByLabelText('Data directory 1')).toBeInTheDocument();
    expect(screen.queryByLabelText('Bucket')).toBeNull();

    fireEvent.click(screen.getByLabelText('S3 bucket'));
    expect(seen[seen.length - 1].jsonData.storage).toBe('bucket');
    expect(screen.queryByLabelText('Data directory 1')).toBeNull();
    expect(screen.getByLabelText('Bucket')).toBeInTheDocument();
    expect(screen.getByLabelText('Endpoint')).toBeInTheDocument();
  });

  it('keeps the secret key in secureJsonData, never in jsonData', () => {
    const seen: Settings[] = [];
    render(<Harness initial={settings({ storage: 'bucket' })} seen={seen} />);
    fireEvent.change(screen.getByLabelText('Endpoint'), { target: { value: ' http://127.0.0.1:8333 ' } });
    fireEvent.blur(screen.getByLabelText('Endpoint'));
    fireEvent.change(screen.getByLabelText('Bucket'), { target: { value: 'zerotrace' } });
    fireEvent.change(screen.getByLabelText('Prefix'), { target: { value: 'cluster-a' } });
    fireEvent.change(screen.getByLabelText('Access key ID'), { target: { value: 'AKIDTEST' } });
    fireEvent.change(screen.getByLabelText('Secret access key'), { target: { value: 's3cr3t' } });
    fireEvent.click(screen.getByLabelText('Path-style addressing'));
    fireEvent.change(screen.getByLabelText('Cache size (MB)'), { target: { value: '256' } });

    const last = seen[seen.length - 1];
    expect(last.jsonData).toEqual({
      storage: 'bucket',
      bucketEndpoint: 'http://127.0.0.1:8333',
      bucketName: 'zerotrace',
      bucketPrefix: 'cluster-a',
      bucketAccessKeyId: 'AKIDTEST',
      bucketPathStyle: true,
      cacheSizeMB: 256,
    });
    expect(last.secureJsonData).toEqual({ bucketSecretAccessKey: 's3cr3t' });
    expect(JSON.stringify(last.jsonData)).not.toContain('s3cr3t');
  });

  it('shows a configured secret as set and resets it', () => {
    const seen: Settings[] = [];
    render(<Harness initial={settings({ storage: 'bucket' }, { bucketSecretAccessKey: true })} seen={seen} />);
    expect(screen.getByDisplayValue('configured')).toBeDisabled();
    fireEvent.click(screen.getByRole('button', { name: /reset/i }));
    const last = seen[seen.length - 1];
    expect(last.secureJsonFields.bucketSecretAccessKey).toBe(false);
    expect(last.secureJsonData).toEqual({ bucketSecretAccessKey: '' });
  });

  it('flags a bad bucket name and a relative cache directory', () => {
    render(<Harness initial={settings({ storage: 'bucket', bucketName: 'Bad_Name', cacheDir: 'cache' })} seen={[]} />);
    expect(screen.getByText('Lower-case letters, digits, dots and dashes')).toBeInTheDocument();
    expect(screen.getByText('Use an absolute path')).toBeInTheDocument();
  });
});
