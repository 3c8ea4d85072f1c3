// force timezone to UTC to allow tests to work regardless of local timezone
// generally used by snapshots, but can affect specific tests
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');
const { grafanaESModules, nodeModulesToTransform } = require('./.config/jest/utils');

module.exports = {
  // Jest configuration provided by Grafana scaffolding
  ...base,
  // @grafana/* 13 pull in ESM-only .mjs builds (d3-*, …): transform them too.
  transform: {
    ...base.transform,
    '^.+\\.mjs$': ['@swc/jest', { jsc: { parser: { syntax: 'ecmascript' } }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [nodeModulesToTransform([...grafanaESModules, 'd3-.*', 'internmap', '@react-hookz', '@ver0'])],
};
