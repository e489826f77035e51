'use strict';
// leanembed/transformers against transformers.js itself (peers/, installed by scripts/setup.sh):
// the same pipeline calls on the same model folder give the same vectors.
const test = require('node:test');
const assert = require('assert/strict');
const path = require('path');
const { pathToFileURL } = require('url');
const { pipeline } = require('leanembed/transformers');
const { minilm, tiny, peers, reference, minCosine, rejectsWithCode } = require('./support.cjs');

async function transformersJs() {
  let entry;
  try {
    entry = require.resolve('@huggingface/transformers', { paths: [peers] });
  } catch (e) {
    throw new Error(`transformers.js not found under ${peers}: run scripts/setup.sh (${e.message})`);
  }
  return import(pathToFileURL(entry).href);
}

test('vectors equal transformers.js on the 64 reference sentences (cosine >= 0.99999)', async () => {
  const { sentences } = reference('minilm-l6-synthetic', 'model');
  assert.equal(sentences.length, 64);
  const tjs = await transformersJs();
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = path.dirname(minilm) + '/';
  const theirs = await tjs.pipeline('feature-extraction', path.basename(minilm), { dtype: 'fp32', local_files_only: true });
  const expected = await theirs(sentences, { pooling: 'mean', normalize: true });
  await theirs.dispose();

  // A hub id looked up in cache_dir, as transformers.js lays models out: <cache_dir>/<org>/<name>/.
  const id = `${path.basename(path.dirname(minilm))}/${path.basename(minilm)}`;
  const extractor = await pipeline('feature-extraction', id, {
    dtype: 'fp32', cache_dir: path.dirname(path.dirname(minilm)), local_files_only: true, session_options: { intraOpNumThreads: 2 },
  });
  try {
    const out = await extractor(sentences, { pooling: 'mean', normalize: true });
    assert.deepEqual(out.dims, expected.dims);
    assert.deepEqual(out.dims, [64, 384]);
    assert.ok(out.data instanceof Float32Array);
    assert.equal(out.data.length, 64 * 384);
    assert.equal(out.type, 'float32');
    const ours = out.tolist();
    const theirsRows = expected.tolist();
    assert.equal(ours.length, 64);
    assert.ok(Array.isArray(ours[0]) && typeof ours[0][0] === 'number');
    const min = minCosine(ours, theirsRows);
    assert.ok(min >= 0.99999, `min cosine vs transformers.js ${min}`);
    // One string gives dims [1, d], as transformers.js does.
    const single = await extractor(sentences[3], { pooling: 'mean', normalize: true });
    assert.deepEqual(single.dims, [1, 384]);
    assert.ok(minCosine([single.data], [theirsRows[3]]) >= 0.99999);
    assert.equal(extractor.info().threads, 2, 'session_options.intraOpNumThreads → threads');
  } finally {
    await extractor.dispose();
  }
});

test('session_options: enableCpuMemArena:false frees the arena; other options ignored with one warning', async () => {
  const warnings = [];
  const onWarning = (w) => { if (w.code === 'LEANEMBED_IGNORED_OPTIONS') warnings.push(w.message); };
  process.on('warning', onWarning);
  let extractor;
  try {
    extractor = await pipeline('feature-extraction', tiny, {
      device: 'cpu', progress_callback: () => {},
      session_options: { enableCpuMemArena: false, enableMemPattern: false, interOpNumThreads: 2, intraOpNumThreads: 1 },
    });
    await new Promise((r) => setImmediate(r));  // warnings are emitted on the next tick
    assert.equal(warnings.length, 1, `warnings: ${JSON.stringify(warnings)}`);
    for (const name of ['device', 'progress_callback', 'session_options.enableMemPattern', 'session_options.interOpNumThreads']) {
      assert.ok(warnings[0].includes(name), `${name} named in: ${warnings[0]}`);
    }
    assert.ok(!warnings[0].includes('enableCpuMemArena') && !warnings[0].includes('intraOpNumThreads'));
    const out = await extractor(['a', 'b'], { pooling: 'mean', normalize: true });
    assert.deepEqual(out.dims, [2, 64]);
    assert.equal(extractor.info().threads, 1);
    // Other poolings are other engines over the same folder; normalize:false really is unnormalized.
    const raw = await extractor(['a'], { pooling: 'cls', normalize: false });
    const norm = Math.hypot(...raw.data);
    assert.ok(Math.abs(norm - 1) > 1e-3, `cls vector norm ${norm}`);
  } finally {
    process.off('warning', onWarning);
    await extractor?.dispose();
  }
});

test('errors: unknown task, missing model, pooling none, after dispose', async () => {
  await rejectsWithCode(pipeline('text-generation', tiny), 'unsupported', /feature-extraction/);
  await rejectsWithCode(pipeline('feature-extraction', 'Xenova/not-here', { cache_dir: path.dirname(tiny), local_files_only: true }), 'io', /not-here/);
  await rejectsWithCode(pipeline('feature-extraction', tiny, { session_options: { intraOpNumThreads: 'two' } }), 'invalid_argument', /threads/, TypeError);
  const extractor = await pipeline('feature-extraction', tiny);
  await rejectsWithCode(extractor(['x']), 'unsupported', /pooling/);  // transformers.js' default pooling is 'none'
  await rejectsWithCode(extractor(5, { pooling: 'mean' }), 'invalid_argument', /string/, TypeError);
  await extractor.dispose();
  await rejectsWithCode(extractor(['x'], { pooling: 'mean' }), 'invalid_argument', /disposed/);
});
