import React from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import {
  Button,
  Field,
  FieldSet,
  IconButton,
  Input,
  RadioButtonGroup,
  SecretInput,
  Stack,
  Switch,
  Text,
} from '@grafana/ui';

import { DEFAULT_DATA_DIRS, Storage, ZerotraceOptions, ZerotraceSecureOptions } from '../types';
import { TraceViewSettings } from './TraceViewSettings';

type Props = DataSourcePluginOptionsEditorProps<ZerotraceOptions, ZerotraceSecureOptions>;

const STORAGES: Array<{ label: string; value: Storage }> = [
  { label: 'Directories', value: 'directories' },
  { label: 'S3 bucket', value: 'bucket' },
];

/**
 * The data source settings: the shard directories the backend reads
 * (one per node, or a parent holding <node>/<window>/ shards), or the
 * S3-compatible bucket the collectors upload to.
 */
export function ConfigEditor(props: Props) {
  const { options, onOptionsChange } = props;
  const storage: Storage = options.jsonData?.storage ?? 'directories';
  return (
    <>
      <Field label="Shards from" noMargin>
        <RadioButtonGroup
          options={STORAGES}
          value={storage}
          onChange={(v) => onOptionsChange({ ...options, jsonData: { ...options.jsonData, storage: v } })}
        />
      </Field>
      {storage === 'bucket' ? <BucketEditor {...props} /> : <DirectoriesEditor {...props} />}
      <TraceViewSettings {...props} />
    </>
  );
}

/** The bucket: address, access key, the secret in secureJsonData, the local cache. */
function BucketEditor({ options, onOptionsChange }: Props) {
  const jsonData = options.jsonData ?? {};
  const set = (patch: Partial<ZerotraceOptions>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });
  const text = (key: keyof ZerotraceOptions, label: string, placeholder: string, description?: string) => (
    <Field label={label} description={description}>
      <Input
        aria-label={label}
        value={(jsonData[key] as string | undefined) ?? ''}
        placeholder={placeholder}
        width={60}
        onChange={(e) => set({ [key]: e.currentTarget.value })}
        onBlur={(e) => set({ [key]: e.currentTarget.value.trim() })}
      />
    </Field>
  );
  const secretSet = options.secureJsonFields?.bucketSecretAccessKey ?? false;
  const bucketInvalid =
    jsonData.bucketName !== undefined && jsonData.bucketName !== '' && !/^[a-z0-9.-]{3,63}$/.test(jsonData.bucketName);
  const cacheInvalid =
    jsonData.cacheDir !== undefined && jsonData.cacheDir !== '' && !jsonData.cacheDir.startsWith('/');
  return (
    <FieldSet label="S3 bucket">
      <Text element="p" color="secondary">
        The bucket the collectors upload to (<code>zerotrace collect --object-store s3://bucket/prefix</code>). The
        plugin downloads the shards a query needs into a local cache and verifies them.
      </Text>
      {text('bucketEndpoint', 'Endpoint', 'https://s3.eu-west-1.amazonaws.com', 'Empty: AWS S3 of the region')}
      <Field
        label="Bucket"
        invalid={bucketInvalid}
        error={bucketInvalid ? 'Lower-case letters, digits, dots and dashes' : ''}
      >
        <Input
          aria-label="Bucket"
          value={jsonData.bucketName ?? ''}
          placeholder="zerotrace"
          width={60}
          onChange={(e) => set({ bucketName: e.currentTarget.value.trim() })}
        />
      </Field>
      {text('bucketPrefix', 'Prefix', 'cluster-a', 'The prefix of the s3:// URL the collectors use')}
      {text('bucketRegion', 'Region', 'us-east-1')}
      {text(
        'bucketAccessKeyId',
        'Access key ID',
        'AKIA…',
        'Empty: the AWS_* variables or shared credentials of the Grafana server'
      )}
      <Field label="Secret access key">
        <SecretInput
          aria-label="Secret access key"
          isConfigured={secretSet}
          value={options.secureJsonData?.bucketSecretAccessKey ?? ''}
          width={60}
          onChange={(e) =>
            onOptionsChange({
              ...options,
              secureJsonData: { ...options.secureJsonData, bucketSecretAccessKey: e.currentTarget.value },
            })
          }
          onReset={() =>
            onOptionsChange({
              ...options,
              secureJsonFields: { ...options.secureJsonFields, bucketSecretAccessKey: false },
              secureJsonData: { ...options.secureJsonData, bucketSecretAccessKey: '' },
            })
          }
        />
      </Field>
      <Field label="Path-style addressing" description="MinIO, SeaweedFS, Ceph RGW">
        <Switch
          aria-label="Path-style addressing"
          value={jsonData.bucketPathStyle ?? false}
          onChange={(e) => set({ bucketPathStyle: e.currentTarget.checked })}
        />
      </Field>
      <Field label="Skip TLS verification" description="Test servers only">
        <Switch
          aria-label="Skip TLS verification"
          value={jsonData.bucketInsecureSkipVerify ?? false}
          onChange={(e) => set({ bucketInsecureSkipVerify: e.currentTarget.checked })}
        />
      </Field>
      {text('bucketCAFile', 'CA file', '/etc/ssl/certs/minio.pem', 'PEM file on the Grafana server')}
      <Field label="Cache directory" invalid={cacheInvalid} error={cacheInvalid ? 'Use an absolute path' : ''}>
        <Input
          aria-label="Cache directory"
          value={jsonData.cacheDir ?? ''}
          placeholder="/tmp/zerotrace-cache"
          width={60}
          onChange={(e) => set({ cacheDir: e.currentTarget.value.trim() })}
        />
      </Field>
      <Field label="Cache size (MB)">
        <Input
          aria-label="Cache size (MB)"
          type="number"
          min={1}
          value={jsonData.cacheSizeMB ?? ''}
          placeholder="1024"
          width={20}
          onChange={(e) => {
            const n = parseInt(e.currentTarget.value, 10);
            set({ cacheSizeMB: Number.isFinite(n) && n > 0 ? n : undefined });
          }}
        />
      </Field>
    </FieldSet>
  );
}

function DirectoriesEditor({ options, onOptionsChange }: Props) {
  const jsonData = options.jsonData ?? {};
  const dirs = jsonData.dataDirs && jsonData.dataDirs.length > 0 ? jsonData.dataDirs : DEFAULT_DATA_DIRS;

  const setDirs = (next: string[]) => {
    onOptionsChange({ ...options, jsonData: { ...jsonData, dataDirs: next } });
  };

  const duplicates = new Set(dirs.filter((d, i) => d !== '' && dirs.indexOf(d) !== i));

  return (
    <FieldSet label="Span store">
      <Text element="p" color="secondary">
        Directories holding Zerotrace shards, as the collector writes them (
        <code>&lt;data-dir&gt;/&lt;node&gt;/&lt;window&gt;/</code>). Add one per node, or one parent directory. The
        Grafana server must be able to read them.
      </Text>
      <Stack direction="column" gap={1}>
        {dirs.map((dir, i) => {
          const invalid =
            dir !== '' && !dir.startsWith('/') ? 'Use an absolute path' : duplicates.has(dir) ? 'Listed twice' : '';
          return (
            <Stack key={i} direction="row" gap={1} alignItems="flex-start">
              <Field label={i === 0 ? 'Data directories' : undefined} invalid={invalid !== ''} error={invalid} noMargin>
                <Input
                  aria-label={`Data directory ${i + 1}`}
                  value={dir}
                  placeholder={DEFAULT_DATA_DIRS[0]}
                  width={60}
                  onChange={(e) => setDirs(dirs.map((d, j) => (j === i ? e.currentTarget.value : d)))}
                  onBlur={(e) => setDirs(dirs.map((d, j) => (j === i ? e.currentTarget.value.trim() : d)))}
                />
              </Field>
              <IconButton
                name="trash-alt"
                tooltip={`Remove data directory ${i + 1}`}
                disabled={dirs.length === 1}
                onClick={() => setDirs(dirs.filter((_, j) => j !== i))}
              />
            </Stack>
          );
        })}
        <div>
          <Button variant="secondary" icon="plus" size="sm" onClick={() => setDirs([...dirs, ''])}>
            Add directory
          </Button>
        </div>
      </Stack>
    </FieldSet>
  );
}
