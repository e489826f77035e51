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

test('cmake-js takes the Node-API headers from node-api-headers and downloads nothing', () => {
  const os = require('os');
  const fs = require('fs');
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'leanembed-cmakejs-'));
  try {
    const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
    // cmake-js keeps downloaded headers in ~/.cmake-js: with HOME empty, any download would show.
    const r = spawnSync(process.execPath, [cmakeJs, 'print-configure', '--directory', path.join(__dirname, '..')],
      { encoding: 'utf8', env: { ...process.env, HOME: home, USERPROFILE: home } });
    assert.equal(r.status, 0, r.stderr);
    const inc = (r.stdout + r.stderr).match(/-DCMAKE_JS_INC=([^'\n]+)/);
    assert.ok(inc, r.stdout);
    assert.match(inc[1], /node_modules\/node-api-headers\/include/);
    assert.match(inc[1], /node_modules\/node-addon-api/);
    assert.deepEqual(fs.readdirSync(home), [], 'nothing written to ~ (no ~/.cmake-js header download)');
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
