// transformers.js side of bench/compare: the feature-extraction pipeline Brainy uses, on a local
// model folder, with its defaults or with the seed note's "optimized" options. Prints one JSON line.
//   node transformers_js_bench.js MODEL_DIR INPUT.txt LIMIT DTYPE MODE(default|seed) [VECTORS_OUT.f32]
// MODE seed = session options {enableCpuMemArena:false, enableMemPattern:false, intra/inter 2} and
// batches of 10 texts; default = the pipeline's defaults, batches of 32 texts (what Brainy sends).
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [modelDir, input, limitArg, dtype = 'fp32', mode = 'default', vectorsOut] = process.argv.slice(2);
  if (!modelDir || !input) {
    console.error('usage: node transformers_js_bench.js MODEL_DIR INPUT.txt LIMIT DTYPE MODE [VECTORS_OUT.f32]');
    process.exit(2);
  }
  const limit = Number(limitArg || 0);
  let texts = fs.readFileSync(input, 'utf8').split('\n');
  if (texts.length && texts[texts.length - 1] === '') texts.pop();
  texts = texts.map((t) => t.replace(/\r$/, ''));
  if (limit > 0) texts = texts.slice(0, limit);

  const t0 = process.hrtime.bigint();
  const { pipeline, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(path.resolve(modelDir)) + '/';
  const options = { dtype, local_files_only: true };
  const batch = mode === 'seed' ? 10 : 32;
  if (mode === 'seed') {
    options.session_options = { enableCpuMemArena: false, enableMemPattern: false, intraOpNumThreads: 2, interOpNumThreads: 2 };
  }
  const extractor = await pipeline('feature-extraction', path.basename(path.resolve(modelDir)), options);
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;

  const out = vectorsOut ? fs.openSync(vectorsOut, 'w') : null;
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < texts.length; i += batch) {
    const result = await extractor(texts.slice(i, i + batch), { pooling: 'mean', normalize: true });
    if (out) fs.writeSync(out, Buffer.from(result.data.buffer, result.data.byteOffset, result.data.byteLength));
    result.dispose?.();
  }
  const runS = Number(process.hrtime.bigint() - t1) / 1e9;
  if (out) fs.closeSync(out);
  console.log(JSON.stringify({ engine: `transformers.js (${mode})`, dtype, batch, texts: texts.length, load_s: loadS,
    run_s: runS, texts_per_s: texts.length / runS, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
}
main().catch((e) => { console.error(e); process.exit(1); });
