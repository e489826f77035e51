// Runs one ONNX file in onnxruntime-node on given token ids and writes its first output.
//   node ort_run.js MODEL.onnx IDS.json OUT.f32
// IDS.json: {"sequences": [[101, 7592, 102], ...]} — one batch, padded to the longest sequence with
// id 0, attention_mask 0, token_type_ids 0 (as leanembed's interpreter path pads). OUT.f32 gets the
// real tokens' rows of the output, packed in order: [total tokens, hidden] float32, little-endian.
// Prints one JSON line: {"tokens": T, "hidden": H, "output": NAME}. Exit 1 on any failure (the
// message on stderr), e.g. when ONNX Runtime refuses to load the file.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [modelPath, idsPath, outPath] = process.argv.slice(2);
  if (!modelPath || !idsPath || !outPath) {
    console.error('usage: node ort_run.js MODEL.onnx IDS.json OUT.f32');
    process.exit(2);
  }
  const ort = require('onnxruntime-node');
  const { sequences } = JSON.parse(fs.readFileSync(idsPath, 'utf8'));
  const session = await ort.InferenceSession.create(path.resolve(modelPath),
    { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'basic' });
  const batch = sequences.length;
  const len = Math.max(...sequences.map((s) => s.length));
  const ids = new BigInt64Array(batch * len), mask = new BigInt64Array(batch * len);
  sequences.forEach((s, b) => s.forEach((id, t) => { ids[b * len + t] = BigInt(id); mask[b * len + t] = 1n; }));
  const feeds = {};
  for (const name of session.inputNames) {
    if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', ids, [batch, len]);
    else if (name === 'attention_mask') feeds[name] = new ort.Tensor('int64', mask, [batch, len]);
    else if (name === 'token_type_ids') feeds[name] = new ort.Tensor('int64', new BigInt64Array(batch * len), [batch, len]);
    else throw new Error(`unexpected model input '${name}'`);
  }
  const result = await session.run(feeds);
  const name = session.outputNames[0];
  const h = result[name];
  const hidden = h.dims[2];
  const total = sequences.reduce((a, s) => a + s.length, 0);
  const out = new Float32Array(total * hidden);
  let row = 0;
  sequences.forEach((s, b) => {
    for (let t = 0; t < s.length; ++t, ++row) out.set(h.data.subarray((b * len + t) * hidden, (b * len + t + 1) * hidden), row * hidden);
  });
  fs.writeFileSync(outPath, Buffer.from(out.buffer));
  console.log(JSON.stringify({ tokens: total, hidden, output: name }));
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
