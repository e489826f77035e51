'use strict';
// `npm pack` / `npm publish` step: makes what the tarball ships besides lib/ and types/:
//  - native/: the engine's sources (the repository's CMakeLists.txt, include/, src/, tools/cli/),
//    for the source build that scripts/install.cjs falls back to;
//  - prebuilds/<platform>-<arch>/: the addon and the shared libraries it needs that a base Debian
//    12 system lacks (libdnnl, libgomp, libutf8proc, liblmdb, libOpenCL), found with ldd; the addon's
//    RPATH is $ORIGIN, so they are found beside it. The addon is $LEANEMBED_NODE_ADDON if set (the
//    repository's release build, -DLEANEMBED_NODE=ON), else built here with cmake-js.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const pkg = path.join(__dirname, '..');
const repo = path.join(pkg, '..', '..');
// Present in every glibc system: never copied.
const kSystem = /^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s)\.so/;

function copyTree(from, to) {
  fs.cpSync(from, to, { recursive: true, filter: (src) => !/\/(build[^/]*|node_modules)(\/|$)/.test(src.slice(from.length)) });
}

// 1. Sources.
const native = path.join(pkg, 'native');
fs.rmSync(native, { recursive: true, force: true });
fs.mkdirSync(native);
fs.copyFileSync(path.join(repo, 'CMakeLists.txt'), path.join(native, 'CMakeLists.txt'));
for (const dir of ['include', 'src', path.join('tools', 'cli')]) copyTree(path.join(repo, dir), path.join(native, dir));

// 2. The addon.
let addon = process.env.LEANEMBED_NODE_ADDON && path.resolve(process.env.LEANEMBED_NODE_ADDON);
if (!addon) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [pkg] });
  const r = spawnSync(process.execPath, [cmakeJs, 'build', '--directory', pkg], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
  addon = path.join(pkg, 'build', 'Release', 'leanembed.node');
}
const rpath = execFileSync('readelf', ['-d', addon], { encoding: 'utf8' });
if (!/\(RPATH\)\s+Library rpath: \[\$ORIGIN\]/.test(rpath)) {
  throw new Error(`${addon}: expected RPATH $ORIGIN (bindings/node/CMakeLists.txt sets it), readelf says:\n${rpath}`);
}

// 3. prebuilds/<platform>-<arch>/: the addon and the libraries it needs.
const out = path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`);
fs.rmSync(path.join(pkg, 'prebuilds'), { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
fs.copyFileSync(addon, path.join(out, 'leanembed.node'));
const copied = [];
for (const line of execFileSync('ldd', [addon], { encoding: 'utf8' }).split('\n')) {
  const m = line.match(/^\s*(\S+) => (\/\S+)/);
  if (!m) {
    if (/not found/.test(line)) throw new Error(`${addon}: ${line.trim()}`);
    continue;
  }
  const [, soname, file] = m;
  if (kSystem.test(soname)) continue;
  fs.copyFileSync(fs.realpathSync(file), path.join(out, soname));
  copied.push(soname);
}
console.error(`prepack: prebuilds/${path.basename(out)}: leanembed.node + ${copied.join(', ')}`);
