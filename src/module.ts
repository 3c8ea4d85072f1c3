import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import { ZerotraceOptions, ZerotraceQuery } from './types';

export const plugin = new DataSourcePlugin<DataSource, ZerotraceQuery, ZerotraceOptions>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
