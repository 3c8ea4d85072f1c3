import { defineConfig } from 'eslint/config';
import baseConfig from './.config/eslint.config.mjs';

export default defineConfig([
  {
    ignores: [
      '**/logs',
      '**/*.log',
      '**/node_modules/',
      '**/coverage',
      '**/dist/',
      '**/artifacts/',
      '**/work/',
      '**/ci/',
      '**/.idea',
      '**/.eslintcache',
      // Not the frontend: Go packages, the collector, the demo's own services, docs, CI.
      'bpf/',
      'collector/',
      'demo/',
      'docs/',
      'pkg/',
      '.ci/',
      'bin/',
      'tmp/',
    ],
  },
  ...baseConfig,
]);
