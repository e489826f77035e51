// Node.js side of the benchmarks: one process embeds the first LIMIT lines of INPUT through
// the leanembed npm package (bindings/node) or through transformers.js (peers/), in batches of
// BATCH texts as Brainy sends them, and prints one JSON line: whole-process peak RSS
// (process.resourceUsage().maxRSS), texts/s (embedding only, and whole process with load), the
// longest event-loop delay while embedding (perf_hooks.monitorEventLoopDelay, 1 ms resolution),
// and for leanembed (unless NODE_BENCH_BARE=0) the RSS of a bare `node -e "import('leanembed')"`,
// measured after the run in a child process (the memory goal's base).
//   node bench/node_bench.js ENGINE MODEL_DIR INPUT.txt [LIMIT=2000] [THREADS=2] [BATCH=32|10] [MAX_LENGTH=512]
//                            [DTYPE=fp32] [VECTORS_OUT.f32]
// ENGINE: leanembed | transformers.js-default | transformers.js-seed (the seed note's options:
// arena and memory pattern off, 2 intra/inter threads, batches of 10).
// The leanembed addon is $LEANEMBED_NODE_ADDON if set, else build/release's (-DLEANEMBED_NODE=ON)
// if there, else the package's own. MAX_LENGTH: leanembed's truncation, as bench/compare gives the
// CLI (transformers.js truncates at tokenizer_config.json's 512 by itself).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { monitorEventLoopDelay } = require('perf_hooks');
const { pathToFileURL } = require('url');

const root = path.join(__dirname, '..');
const releaseAddon = path.join(root, 'build', 'release', 'bindings', 'node', 'leanembed.node');
if (!process.env.LEANEMBED_NODE_ADDON && fs.existsSync(releaseAddon)) process.env.LEANEMBED_NODE_ADDON = releaseAddon;
const t0 = process.hrtime.bigint();
const seconds = (from) => Number(process.hrtime.bigint() - from) / 1e9;

async function loadEngine(engine, modelDir, threads, maxLength, dtype) {
  if (engine === 'leanembed') {
    const { Embedder } = require(path.join(root, 'bindings', 'node'));
    const e = await Embedder.load({ model: modelDir, threads, maxLength, dtype });
    return { embed: (texts) => e.embedFlat(texts), dispose: () => e.dispose() };
  }
  const mode = engine.replace('transformers.js-', '');
  const entry = require.resolve('@huggingface/transformers', { paths: [path.join(root, 'peers')] });
  const { pipeline, env } = await import(pathToFileURL(entry).href);
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(path.resolve(modelDir)) + '/';
  const options = { dtype, local_files_only: true };
  if (mode === 'seed') {
    options.session_options = { enableCpuMemArena: false, enableMemPattern: false, intraOpNumThreads: threads, interOpNumThreads: threads };
  }
  const extractor = await pipeline('feature-extraction', path.basename(path.resolve(modelDir)), options);
  return {
    embed: async (texts) => {
      const out = await extractor(texts, { pooling: 'mean', normalize: true });
      const data = out.data.slice();
      out.dispose?.();
      return data;
    },
    dispose: () => extractor.dispose(),
  };
}

async function main() {
  const [engine, modelDir, input, limitArg = '2000', threadsArg = '2', batchArg, maxLengthArg = '512', dtype = 'fp32',
    vectorsOut] = process.argv.slice(2);
  if (!['leanembed', 'transformers.js-default', 'transformers.js-seed'].includes(engine) || !modelDir || !input) {
    console.error('usage: node bench/node_bench.js leanembed|transformers.js-default|transformers.js-seed MODEL_DIR INPUT [LIMIT] [THREADS] [BATCH] [MAX_LENGTH] [DTYPE] [VECTORS_OUT]');
    process.exit(2);
  }
  const threads = Number(threadsArg);
  const batch = Number(batchArg || (engine === 'transformers.js-seed' ? 10 : 32));
  let texts = fs.readFileSync(input, 'utf8').split('\n');
  if (texts[texts.length - 1] === '') texts.pop();
  texts = texts.map((t) => t.replace(/\r$/, '')).slice(0, Number(limitArg));

  const e = await loadEngine(engine, modelDir, threads, Number(maxLengthArg), dtype);
  const loadS = seconds(t0);
  const out = vectorsOut ? fs.openSync(vectorsOut, 'w') : null;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < texts.length; i += batch) {
    const data = await e.embed(texts.slice(i, i + batch));
    if (out) fs.writeSync(out, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  const runS = seconds(t1);
  delay.disable();
  if (out) fs.closeSync(out);
  await e.dispose();
  const result = {
    engine, dtype, texts: texts.length, batch, threads, load_s: +loadS.toFixed(3), run_s: +runS.toFixed(3),
    texts_per_s: +(texts.length / runS).toFixed(1), texts_per_s_whole: +(texts.length / seconds(t0)).toFixed(1),
    peak_rss_mb: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    max_event_loop_delay_ms: +(delay.max / 1e6).toFixed(2), p99_event_loop_delay_ms: +(delay.percentile(99) / 1e6).toFixed(2),
  };
  if (engine === 'leanembed' && process.env.NODE_BENCH_BARE !== '0') {
    const bare = execFileSync(process.execPath, ['-e',
      `import(${JSON.stringify(pathToFileURL(path.join(root, 'bindings', 'node', 'lib', 'index.mjs')).href)}).then(() => console.log(process.resourceUsage().maxRSS))`],
    { encoding: 'utf8' });
    result.bare_import_rss_mb = +(Number(bare) / 1024).toFixed(1);
    result.rss_goal_mb = +(result.bare_import_rss_mb + 80).toFixed(1);
  }
  console.log(JSON.stringify(result));
}
main().catch((e) => { console.error(e); process.exit(1); });
