// ONNX Runtime used directly (no transformers.js) for bench/compare: Hugging Face tokenizers (Rust)
// + onnxruntime-node + mean pooling + L2 normalisation, batches padded to their longest text.
// Prints one JSON line.
//   node ort_embed_bench.js MODEL_DIR INPUT.txt LIMIT MODEL_FILE BATCH THREADS ARENA(on|off) MAX_LENGTH [VECTORS_OUT.f32]
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [modelDir, input, limitArg, modelFile = 'onnx/model.onnx', batchArg = '10', threadsArg = '2',
    arenaArg = 'off', maxLenArg = '512', vectorsOut] = process.argv.slice(2);
  if (!modelDir || !input) {
    console.error('usage: node ort_embed_bench.js MODEL_DIR INPUT.txt LIMIT MODEL_FILE BATCH THREADS ARENA MAX_LENGTH [OUT]');
    process.exit(2);
  }
  const limit = Number(limitArg || 0), batch = Number(batchArg), threads = Number(threadsArg);
  const arena = arenaArg === 'on', maxLength = Number(maxLenArg);
  let texts = fs.readFileSync(input, 'utf8').split('\n');
  if (texts.length && texts[texts.length - 1] === '') texts.pop();
  texts = texts.map((t) => t.replace(/\r$/, ''));
  if (limit > 0) texts = texts.slice(0, limit);

  const t0 = process.hrtime.bigint();
  const ort = require('onnxruntime-node');
  const { Tokenizer } = require('@anush008/tokenizers');
  const tokenizer = Tokenizer.fromFile(path.join(modelDir, 'tokenizer.json'));
  tokenizer.disablePadding();
  tokenizer.setTruncation(maxLength);
  const options = { intraOpNumThreads: threads, interOpNumThreads: threads };
  if (!arena) { options.enableCpuMemArena = false; options.enableMemPattern = false; }
  const session = await ort.InferenceSession.create(path.resolve(modelDir, modelFile), options);
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  const needsTypeIds = session.inputNames.includes('token_type_ids');

  const out = vectorsOut ? fs.openSync(vectorsOut, 'w') : null;
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < texts.length; i += batch) {
    const group = texts.slice(i, i + batch);
    const encs = [];
    for (const t of group) encs.push((await tokenizer.encode(t)).getIds());
    const len = Math.max(...encs.map((e) => e.length));
    const ids = new BigInt64Array(group.length * len), mask = new BigInt64Array(group.length * len);
    encs.forEach((e, b) => e.forEach((id, t) => { ids[b * len + t] = BigInt(id); mask[b * len + t] = 1n; }));
    const feeds = { input_ids: new ort.Tensor('int64', ids, [group.length, len]),
      attention_mask: new ort.Tensor('int64', mask, [group.length, len]) };
    if (needsTypeIds) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(group.length * len), [group.length, len]);
    const result = await session.run(feeds);
    const h = result[session.outputNames[0]];
    const hidden = h.dims[2], data = h.data;
    const vecs = new Float32Array(group.length * hidden);
    encs.forEach((e, b) => {
      const v = vecs.subarray(b * hidden, (b + 1) * hidden);
      for (let t = 0; t < e.length; ++t) for (let d = 0; d < hidden; ++d) v[d] += data[(b * len + t) * hidden + d];
      let n = 0;
      for (let d = 0; d < hidden; ++d) { v[d] /= e.length; n += v[d] * v[d]; }
      n = Math.max(Math.sqrt(n), 1e-12);
      for (let d = 0; d < hidden; ++d) v[d] /= n;
    });
    if (out) fs.writeSync(out, Buffer.from(vecs.buffer));
  }
  const runS = Number(process.hrtime.bigint() - t1) / 1e9;
  if (out) fs.closeSync(out);
  console.log(JSON.stringify({ engine: `onnxruntime-node (batch ${batch}, arena ${arena ? 'on' : 'off'})`, texts: texts.length,
    load_s: loadS, run_s: runS, texts_per_s: texts.length / runS, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
}
main().catch((e) => { console.error(e); process.exit(1); });
