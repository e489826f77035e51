'use strict';
// Loads the native addon: $LEANEMBED_NODE_ADDON if set (a path: the repository's own build, as
// scripts/test.sh uses), else the prebuilt one shipped in the npm tarball
// (prebuilds/<platform>-<arch>/, the shared libraries it needs beside it), else the one
// `npm run build` made (build/Release/).
const path = require('path');

// OpenMP workers sleep as soon as a parallel region ends (README, "Process settings"), as in
// `leanembed serve`: calls come when the program makes them, and one sentence after a 20-40 ms
// pause took 7 ms this way against 11.5-15 ms with the CLI's short spin (GOMP_SPINCOUNT=10000),
// which is ~5% faster on long batches (bindings/node/README.md, "Process settings"). libgomp reads the setting when it is loaded, i.e. with the addon below,
// so it is set first — unless the user chose.
if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
  process.env.OMP_WAIT_POLICY = 'passive';
}

const root = path.join(__dirname, '..');
const candidates = process.env.LEANEMBED_NODE_ADDON ? [path.resolve(process.env.LEANEMBED_NODE_ADDON)] : [
  path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'leanembed.node'),
  path.join(root, 'build', 'Release', 'leanembed.node'),
];

function loadAddon() {
  const failures = [];
  for (const file of candidates) {
    try {
      return require(file);
    } catch (e) {
      failures.push(`${file}: ${e.code === 'MODULE_NOT_FOUND' ? 'not there' : e.message}`);
    }
  }
  const error = new Error(
    `leanembed: no loadable native addon for ${process.platform}-${process.arch}.\n  ${failures.join('\n  ')}\n` +
      `Build it from source with \`node ${path.join(root, 'scripts', 'install.cjs')}\` (needs a C++20 compiler, ` +
      'CMake and the -dev packages listed in the README).');
  error.code = 'runtime';
  throw error;
}

module.exports = loadAddon();
