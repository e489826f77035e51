'use strict';
// The package's entry points: CommonJS and ESM give the same objects; the TypeScript types check.
const test = require('node:test');
const assert = require('assert/strict');
const path = require('path');
const { spawnSync } = require('child_process');

test('require() and import() of the three entry points', async () => {
  const cjs = require('leanembed');
  const esm = await import('leanembed');
  assert.equal(typeof cjs.Embedder.load, 'function');
  assert.equal(esm.Embedder, cjs.Embedder);
  const tj = await import('leanembed/transformers');
  assert.equal(tj.pipeline, require('leanembed/transformers').pipeline);
  const brainy = await import('leanembed/brainy');
  assert.equal(brainy.default, require('leanembed/brainy').default);
  assert.equal(brainy.default.name, 'leanembed');
  assert.equal(typeof brainy.createBrainyPlugin, 'function');
});

test('the TypeScript declarations type-check for ESM and CommonJS users', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tsc:\n${r.stdout}${r.stderr}`);
});
