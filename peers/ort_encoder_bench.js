// ONNX Runtime side of bench/encoder_bench: runs an encoder file on the same token sequences
// leanembed runs, in padded batches as transformers.js builds them, and prints one JSON line.
//   node ort_encoder_bench.js MODEL.onnx TOKENS.json BATCH THREADS ARENA(on|off) [REPEATS]
// TOKENS.json: {"sequences": [[101, ..., 102], ...]} (token ids, unpadded).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [modelPath, tokensPath, batchArg, threadsArg, arenaArg, repeatsArg] = process.argv.slice(2);
  if (!modelPath || !tokensPath) {
    console.error('usage: node ort_encoder_bench.js MODEL.onnx TOKENS.json BATCH THREADS ARENA(on|off) [REPEATS]');
    process.exit(2);
  }
  const batch = Number(batchArg || 1), threads = Number(threadsArg || 2), arena = (arenaArg || 'on') === 'on';
  const repeats = Number(repeatsArg || 1);
  const seqs = JSON.parse(fs.readFileSync(tokensPath, 'utf8')).sequences;
  const t0 = process.hrtime.bigint();
  const options = { intraOpNumThreads: threads, interOpNumThreads: threads };
  if (!arena) { options.enableCpuMemArena = false; options.enableMemPattern = false; }
  const session = await ort.InferenceSession.create(modelPath, options);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const needsTypeIds = session.inputNames.includes('token_type_ids');
  let tokens = 0;
  const t1 = process.hrtime.bigint();
  for (let r = 0; r < repeats; ++r) {
    for (let i = 0; i < seqs.length; i += batch) {
      const group = seqs.slice(i, i + batch);
      const len = Math.max(...group.map((s) => s.length));
      const ids = new BigInt64Array(group.length * len), mask = new BigInt64Array(group.length * len);
      group.forEach((s, b) => s.forEach((id, t) => { ids[b * len + t] = BigInt(id); mask[b * len + t] = 1n; }));
      const feeds = {
        input_ids: new ort.Tensor('int64', ids, [group.length, len]),
        attention_mask: new ort.Tensor('int64', mask, [group.length, len]),
      };
      if (needsTypeIds) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(group.length * len), [group.length, len]);
      const out = await session.run(feeds);
      tokens += group.reduce((a, s) => a + s.length, 0);
      for (const k of Object.keys(out)) out[k].dispose?.();
    }
  }
  const runS = Number(process.hrtime.bigint() - t1) / 1e9;
  const rssMb = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ engine: arena ? 'onnxruntime (default)' : 'onnxruntime (arena off)', batch, threads,
    sequences: seqs.length * repeats, tokens, load_ms: loadMs, run_s: runS, tokens_per_s: tokens / runS,
    sequences_per_s: seqs.length * repeats / runS, peak_rss_mb: rssMb }));
}
main().catch((e) => { console.error(e); process.exit(1); });
