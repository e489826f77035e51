'use strict';
// leanembed/brainy through a stand-in for Brainy's plugin context: the providers Brainy calls,
// Brainy's own model folder found through @soulcraft/brainy's resolution, vectors equal to
// PyTorch's on that folder (mean pooling, normalized, 128 tokens), counting of activations, and
// loud failures.
const test = require('node:test');
const assert = require('assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createBrainyPlugin } = require('leanembed/brainy');
const defaultPlugin = require('leanembed/brainy').default;
const { Embedder } = require('leanembed');
const { minilm, tiny, corpus, reference, cosine, minCosine } = require('./support.cjs');

// What Brainy's activate() hands a plugin: registerProvider(key, implementation).
function standInContext() {
  const providers = new Map();
  return { providers, registerProvider: (key, impl) => providers.set(key, impl) };
}

// A project folder with node_modules/@soulcraft/brainy laid out as Brainy 7 ships it: its model
// folder holds config.json, tokenizer.json and model.safetensors only. While this build reads ONNX
// only, onnx/model.onnx is added (the test uses whichever the library loads).
let project;
async function brainyProject() {
  if (project) return project;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leanembed-brainy-'));
  const pkg = path.join(dir, 'node_modules', '@soulcraft', 'brainy');
  const folder = path.join(pkg, 'assets', 'models', 'all-MiniLM-L6-v2');
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: '@soulcraft/brainy', version: '7.0.0', main: 'index.js' }));
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) fs.symlinkSync(path.join(minilm, f), path.join(folder, f));
  let format = 'safetensors';
  try {
    await (await Embedder.load({ model: folder, idleUnload: 0 })).dispose();
  } catch (e) {
    fs.mkdirSync(path.join(folder, 'onnx'));
    fs.symlinkSync(path.join(minilm, 'onnx', 'model.onnx'), path.join(folder, 'onnx', 'model.onnx'));
    format = 'onnx';
  }
  project = { dir, folder, format };
  return project;
}

test.after(() => { if (project) fs.rmSync(project.dir, { recursive: true, force: true }); });

test('activate registers embeddings and embedBatch; vectors equal PyTorch on Brainy\'s folder (128 tokens)', async (t) => {
  const { dir, format } = await brainyProject();
  const plugin = createBrainyPlugin({ from: dir });
  assert.equal(plugin.name, 'leanembed');
  const ctx = standInContext();
  assert.equal(await plugin.activate(ctx), true);
  try {
    const embed = ctx.providers.get('embeddings');
    const embedBatch = ctx.providers.get('embedBatch');
    assert.equal(typeof embed, 'function');
    assert.equal(typeof embedBatch, 'function');
    const info = await plugin.info();
    assert.equal(info.maxLength, 128);
    assert.equal(info.pooling, 'mean');
    assert.equal(info.normalize, true);
    t.diagnostic(`Brainy's folder loaded from its ${format} file`);

    const ref = reference('minilm-l6-synthetic', 'torch_fp32_trunc128');  // 64 sentences + 16 long passages
    const rows = await embedBatch(ref.sentences);
    assert.equal(rows.length, ref.sentences.length);
    for (const r of rows) {
      assert.ok(Array.isArray(r), 'plain arrays, not typed arrays');
      assert.equal(r.length, 384);
      assert.ok(r.every((x) => typeof x === 'number' && Number.isFinite(x)));
    }
    const min = minCosine(rows, ref.embeddings);
    assert.ok(min >= 0.99999, `min cosine vs PyTorch (truncated at 128) ${min}`);

    const one = await embed(ref.sentences[70]);  // a passage longer than 128 tokens
    assert.ok(Array.isArray(one) && one.length === 384);
    assert.ok(cosine(one, ref.embeddings[70]) >= 0.99999);
  } finally {
    await plugin.deactivate();
  }
});

test('embeddings(string | string[] | object), empty string, 2000 texts, concurrent calls', async () => {
  const plugin = createBrainyPlugin({ model: tiny });
  const ctx = standInContext();
  await plugin.activate(ctx);
  try {
    const embed = ctx.providers.get('embeddings');
    const embedBatch = ctx.providers.get('embedBatch');
    const same = (a, b) => assert.ok(cosine(a, b) > 0.999999, `cosine ${cosine(a, b)}`);
    same(await embed(['red', 'green', 'blue']), await embed('red green blue'));
    const obj = { title: 'A note', tags: ['x', 'y'], n: 3 };
    same(await embed(obj), await embed(JSON.stringify(obj)));
    const empty = await embed('');
    assert.equal(empty.length, 64);
    assert.ok(empty.every(Number.isFinite));
    await assert.rejects(embed(42), (e) => e instanceof TypeError && e.code === 'invalid_argument');
    await assert.rejects(embedBatch('not an array'), (e) => e instanceof TypeError && e.code === 'invalid_argument');

    const texts = corpus('sentences.txt', 2000);
    const rows = await embedBatch(texts);
    assert.equal(rows.length, 2000);
    assert.ok(rows.every((r) => Array.isArray(r) && r.length === 64));
    same(rows[1234], await embed(texts[1234]));
    assert.deepEqual(await embedBatch([]), []);

    const results = await Promise.all([
      embedBatch(texts.slice(0, 300)), embed(texts[7]), embedBatch(texts.slice(300, 500)), embed([texts[9]]),
    ]);
    for (let i = 0; i < 300; ++i) same(results[0][i], rows[i]);
    same(results[1], rows[7]);
    for (let i = 0; i < 200; ++i) same(results[2][i], rows[300 + i]);
    same(results[3], rows[9]);
  } finally {
    await plugin.deactivate();
  }
});

test('activate is idempotent per context; the engine is counted across contexts', async () => {
  const plugin = createBrainyPlugin({ model: tiny });
  const a = standInContext();
  const b = standInContext();
  await plugin.activate(a);
  await plugin.activate(a);
  assert.equal(plugin.activations, 1);
  await plugin.activate(b);
  assert.equal(plugin.activations, 2);
  const first = await plugin.info();
  await plugin.deactivate();
  assert.equal(plugin.activations, 1);
  const v = await b.providers.get('embeddings')('still served');
  assert.equal(v.length, 64);
  assert.equal((await plugin.info()).loads, first.loads, 'the same engine, not reloaded');
  await plugin.deactivate();
  assert.equal(plugin.activations, 0);
  await plugin.deactivate();  // more deactivations than activations: harmless
  assert.equal(plugin.activations, 0);
  // A provider Brainy still holds after the last deactivate() loads the engine again.
  assert.equal((await b.providers.get('embeddings')('again')).length, 64);
  await plugin.activate(a);
  await plugin.deactivate();
});

test('no model: activate throws a message that says what to do; the providers say it too', async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'leanembed-nobrainy-'));
  const saved = process.env.LEANEMBED_MODEL;
  delete process.env.LEANEMBED_MODEL;
  try {
    const plugin = createBrainyPlugin({ from: empty });
    const ctx = standInContext();
    await assert.rejects(plugin.activate(ctx), (e) => {
      assert.match(e.message, /@soulcraft\/brainy/);
      assert.match(e.message, /LEANEMBED_MODEL/);
      assert.equal(e.code, 'io');
      return true;
    });
    assert.equal(ctx.providers.size, 0, 'nothing registered');
    await assert.rejects(plugin.info(), /@soulcraft\/brainy/);
    assert.equal(plugin.activations, 0);

    const broken = createBrainyPlugin({ model: path.join(empty, 'no-model-here') });
    await assert.rejects(broken.activate(standInContext()), (e) => e.code === 'io' && /no-model-here/.test(e.message));
  } finally {
    if (saved !== undefined) process.env.LEANEMBED_MODEL = saved;
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('LEANEMBED_MODEL picks the model when the options do not; the default export is a plugin', async () => {
  const saved = process.env.LEANEMBED_MODEL;
  process.env.LEANEMBED_MODEL = tiny;
  try {
    const plugin = createBrainyPlugin();
    const ctx = standInContext();
    assert.equal(await plugin.activate(ctx), true);
    assert.equal((await ctx.providers.get('embeddings')('x')).length, 64);
    await plugin.deactivate();
  } finally {
    if (saved === undefined) delete process.env.LEANEMBED_MODEL;
    else process.env.LEANEMBED_MODEL = saved;
  }
  assert.equal(defaultPlugin.name, 'leanembed');
  assert.equal(typeof defaultPlugin.activate, 'function');
  assert.equal(typeof defaultPlugin.deactivate, 'function');
});
