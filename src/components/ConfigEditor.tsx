import React from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { Button, Field, FieldSet, IconButton, Input, Stack, Text } from '@grafana/ui';

import { DEFAULT_DATA_DIRS, ZerotraceOptions } from '../types';

type Props = DataSourcePluginOptionsEditorProps<ZerotraceOptions>;

/**
 * The data source settings: the shard directories the backend reads
 * (one per node, or a parent holding <node>/<window>/ shards).
 */
export function ConfigEditor({ options, onOptionsChange }: Props) {
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
