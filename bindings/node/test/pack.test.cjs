'use strict';
// `npm pack` gives a tarball that installs offline into an empty project and runs there on its
// prebuilt addon, whose shared libraries come from the package (RPATH $ORIGIN), not the system.
const test = require('node:test');
const assert = require('assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { tiny } = require('./support.cjs');

function run(cmd, args, options) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('npm pack → npm install --offline in an empty folder → loads the prebuilt addon and embeds', { timeout: 600000 }, (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leanembed-pack-'));
  try {
    const pkg = path.join(__dirname, '..');
    run('npm', ['pack', '--pack-destination', tmp], { cwd: pkg });
    const tarballs = fs.readdirSync(tmp).filter((f) => /^leanembed-.*\.tgz$/.test(f));
    assert.equal(tarballs.length, 1);
    const tarball = path.join(tmp, tarballs[0]);
    const mb = fs.statSync(tarball).size / 1e6;
    t.diagnostic(`tarball ${tarballs[0]}: ${mb.toFixed(1)} MB`);
    assert.ok(mb < 25, `tarball ${mb.toFixed(1)} MB`);

    const project = path.join(tmp, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: project });

    const env = { ...process.env };
    delete env.LEANEMBED_NODE_ADDON;  // the installed package's own addon
    const script = `
      const { Embedder } = require('leanembed');
      (async () => {
        const e = await Embedder.load({ model: ${JSON.stringify(tiny)} });
        const v = await e.embed('hello from a fresh install');
        const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
        const libs = [...new Set(maps.split('\\n').map((l) => l.split(/\\s+/).pop()).filter((f) => /libdnnl|libgomp|libutf8proc|liblmdb|leanembed\\.node/.test(f)))];
        console.log(JSON.stringify({ dims: v.length, sum: v.reduce((a, b) => a + b * b, 0), libs }));
        await e.dispose();
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const out = JSON.parse(run(process.execPath, ['-e', script], { cwd: project, env }).trim());
    assert.equal(out.dims, 64);
    assert.ok(Math.abs(out.sum - 1) < 1e-4, 'a normalized vector');
    const prebuilds = path.join(project, 'node_modules', 'leanembed', 'prebuilds', `${process.platform}-${process.arch}`);
    assert.ok(out.libs.length >= 5, JSON.stringify(out.libs));
    for (const lib of out.libs) assert.ok(lib.startsWith(prebuilds), `${lib} loaded from outside ${prebuilds}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
