// Min and mean cosine between the rows of two float32 files of DIMS columns (vectors from two
// engines for the same texts). Prints one JSON line.   node cosine.js A.f32 B.f32 DIMS
'use strict';
const fs = require('fs');
const [a, b, dimsArg] = process.argv.slice(2);
const dims = Number(dimsArg);
const read = (p) => { const buf = fs.readFileSync(p); return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4); };
const x = read(a), y = read(b);
if (x.length !== y.length || x.length % dims) { console.error(`cosine.js: sizes differ (${x.length} vs ${y.length} floats)`); process.exit(1); }
let min = 1, sum = 0, worst = -1;
const rows = x.length / dims;
for (let r = 0; r < rows; ++r) {
  let d = 0, nx = 0, ny = 0;
  for (let k = r * dims; k < (r + 1) * dims; ++k) { d += x[k] * y[k]; nx += x[k] * x[k]; ny += y[k] * y[k]; }
  const c = d / Math.sqrt(nx * ny);
  sum += c;
  if (c < min) { min = c; worst = r; }
}
console.log(JSON.stringify({ rows, min_cosine: min, mean_cosine: sum / rows, worst_row: worst }));
