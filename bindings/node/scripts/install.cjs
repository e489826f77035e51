'use strict';
// npm's install step for the package: nothing to do when the prebuilt addon (prebuilds/<platform>-
// <arch>/leanembed.node, its shared libraries beside it) loads on this machine; otherwise the addon
// is built from the sources shipped in native/ with cmake-js (bundled), which needs a C++20
// compiler, CMake, Ninja or make, and the -dev packages the README lists.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'leanembed.node');
const built = path.join(root, 'build', 'Release', 'leanembed.node');

// Loads `file` in a child process (a failed dlopen leaves nothing behind in this one).
function loads(file) {
  if (!fs.existsSync(file)) return { ok: false, why: 'not there' };
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', file], { encoding: 'utf8' });
  const lines = (r.stderr || '').split('\n');
  return { ok: r.status === 0, why: lines.find((l) => /Error/.test(l)) || lines.filter(Boolean).slice(-1)[0] || `exit ${r.status}` };
}

const pre = loads(prebuilt);
if (pre.ok) process.exit(0);
if (loads(built).ok) process.exit(0);
if (fs.existsSync(prebuilt)) console.error(`leanembed: the prebuilt addon does not load here (${pre.why}); building from source`);
else console.error(`leanembed: no prebuilt addon for ${process.platform}-${process.arch}; building from source`);

let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  console.error('leanembed: cmake-js is missing, so the addon cannot be built (npm install cmake-js node-addon-api node-api-headers)');
  process.exit(1);
}
const r = spawnSync(process.execPath, [cmakeJs, 'build', '--directory', root], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('leanembed: the source build failed. It needs g++ >= 12 (C++20), cmake >= 3.25, and on Debian/Ubuntu:\n' +
    '  apt-get install build-essential cmake pkg-config libdnnl-dev ocl-icd-opencl-dev libutf8proc-dev nlohmann-json3-dev liblmdb-dev');
  process.exit(r.status || 1);
}
const after = loads(built);
if (!after.ok) {
  console.error(`leanembed: the addon was built but does not load: ${after.why}`);
  process.exit(1);
}
