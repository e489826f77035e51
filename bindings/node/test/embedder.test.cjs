'use strict';
// Embedder: vectors equal the references, errors carry codes, calls run off the JS thread,
// concurrency, unload / dispose, and the idle watcher never keeping the process alive.
const test = require('node:test');
const assert = require('assert/strict');
const path = require('path');
const { spawnSync } = require('child_process');
const { monitorEventLoopDelay } = require('perf_hooks');
const { Embedder } = require('leanembed');
const { tiny, corpus, reference, cosine, minCosine, rejectsWithCode } = require('./support.cjs');

test('embedBatch equals ONNX Runtime on the 64 reference sentences; embed equals its row', async () => {
  const ref = reference('tiny-bert-synthetic', 'model');
  const e = await Embedder.load({ model: tiny, threads: 2 });
  try {
    assert.equal(e.dims, 64);
    const rows = await e.embedBatch(ref.sentences);
    assert.equal(rows.length, 64);
    rows.forEach((r, i) => {
      assert.ok(r instanceof Float32Array);
      assert.equal(r.length, 64);
      assert.equal(r.byteOffset, i * 64 * 4, 'rows are views of one buffer, in order');
    });
    assert.ok(minCosine(rows, ref.embeddings) >= 0.99999, `min cosine ${minCosine(rows, ref.embeddings)}`);
    const one = await e.embed(ref.sentences[5]);
    assert.ok(one instanceof Float32Array);
    assert.ok(cosine(one, rows[5]) > 0.999999);
    assert.deepEqual(await e.embedBatch([]), []);
  } finally {
    await e.dispose();
  }
});

test('tokenize gives the reference ids; info() describes the model without loading it', async () => {
  const ref = reference('tiny-bert-synthetic', 'model');
  const e = await Embedder.load({ model: tiny, maxLength: 32, dims: 32, pooling: 'cls', normalize: false });
  try {
    const t = await e.tokenize(ref.sentences[0]);
    assert.deepEqual(t.ids, ref.input_ids[0].slice(0, 32).length === ref.input_ids[0].length
      ? ref.input_ids[0] : [...ref.input_ids[0].slice(0, 31), ref.input_ids[0].at(-1)]);
    assert.equal(t.tokens.length, t.ids.length);
    assert.equal(t.tokens[0], '[CLS]');
    const info = e.info();
    assert.equal(info.dims, 32);
    assert.equal(info.maxLength, 32);
    assert.equal(info.pooling, 'cls');
    assert.equal(info.normalize, false);
    assert.equal(info.hiddenSize, 64);
    assert.equal(info.loaded, true);
    assert.equal(info.path, 'fast');
    assert.equal(typeof info.cache, 'object');
    assert.equal((await e.embed('x')).length, 32);
  } finally {
    await e.dispose();
  }
});

test('texts are any JS strings: empty, lone surrogates, NUL, long', async () => {
  const e = await Embedder.load({ model: tiny });
  try {
    const odd = ['', '\ud800 broken surrogate', 'nul\u0000inside', 'long '.repeat(5000), 'émoji 🙂 漢字'];
    const rows = await e.embedBatch(odd);
    for (const r of rows) assert.ok(r.every(Number.isFinite));
    assert.deepEqual((await e.tokenize('')).tokens, ['[CLS]', '[SEP]']);
  } finally {
    await e.dispose();
  }
});

test('errors: JS Errors with the library code; wrong types are TypeErrors', async () => {
  await rejectsWithCode(Embedder.load({ model: path.join(tiny, 'no-such-folder') }), 'io', /no-such-folder/);
  await rejectsWithCode(Embedder.load({ model: tiny, dtype: 'fp64' }), 'invalid_argument', /fp64/);
  await rejectsWithCode(Embedder.load({ model: tiny, pooling: 'median' }), 'invalid_argument', /median/);
  await rejectsWithCode(Embedder.load({ model: tiny, threads: -1 }), 'invalid_argument', /threads/);
  await rejectsWithCode(Embedder.load({ model: tiny, threads: 1.5 }), 'invalid_argument', /threads/);
  await rejectsWithCode(Embedder.load({ model: 42 }), 'invalid_argument', /model/, TypeError);
  await rejectsWithCode(Embedder.load({}), 'invalid_argument', /model/, TypeError);
  await rejectsWithCode(Embedder.load({ model: tiny, maxLenght: 5 }), 'invalid_argument', /maxLenght/, TypeError);
  await rejectsWithCode(Embedder.load({ model: tiny, normalize: 'yes' }), 'invalid_argument', /normalize/, TypeError);
  await rejectsWithCode(Embedder.load(null), 'invalid_argument', /options/, TypeError);
  assert.throws(() => new Embedder({}), TypeError);
  const e = await Embedder.load({ model: tiny, maxMemory: 1 << 30 });
  try {
    await rejectsWithCode(e.embed(5), 'invalid_argument', /string/, TypeError);
    await rejectsWithCode(e.embed(['a']), 'invalid_argument', /string/, TypeError);
    await rejectsWithCode(e.embedBatch('a'), 'invalid_argument', /array/, TypeError);
    await rejectsWithCode(e.embedBatch(['a', 3]), 'invalid_argument', /texts\[1\]/, TypeError);
    await rejectsWithCode(e.tokenize(undefined), 'invalid_argument', /string/, TypeError);
  } finally {
    await e.dispose();
  }
  // A budget the model cannot fit: refused at load, naming the figures.
  await rejectsWithCode(Embedder.load({ model: tiny, maxMemory: 1024 }), 'out_of_memory', /budget/);
});

test('model location: format (safetensors = ONNX vectors), localFilesOnly never fetches a missing hub id', async () => {
  const fs = require('fs');
  const os = require('os');
  const ref = reference('tiny-bert-synthetic', 'model');
  const st = await Embedder.load({ model: tiny, format: 'safetensors' });
  try {
    assert.match(st.info().modelPath, /model\.safetensors$/);
    assert.ok(minCosine(await st.embedBatch(ref.sentences), ref.embeddings) >= 0.99999);
  } finally {
    await st.dispose();
  }
  await rejectsWithCode(Embedder.load({ model: tiny, format: 'gguf' }), 'invalid_argument', /gguf/);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'leanembed-hub-'));
  try {
    await rejectsWithCode(Embedder.load({ model: 'org/absent-model', modelCacheDir: empty, localFilesOnly: true, revision: 'main' }),
      'io', /absent-model/);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('concurrent calls give the same vectors as one call', async () => {
  const texts = corpus('sentences.txt', 200);
  const e = await Embedder.load({ model: tiny });
  try {
    const whole = await e.embedBatch(texts);
    const parts = await Promise.all([
      e.embedBatch(texts.slice(0, 50)), e.embedBatch(texts.slice(50, 120)), e.embedBatch(texts.slice(120)),
      ...texts.slice(0, 10).map((t) => e.embed(t)), e.tokenize(texts[0]), e.unload(),
    ]);
    const rows = [...parts[0], ...parts[1], ...parts[2]];
    for (let i = 0; i < texts.length; ++i) assert.ok(cosine(rows[i], whole[i]) > 0.999999, `row ${i}`);
    for (let i = 0; i < 10; ++i) assert.ok(cosine(parts[3 + i], whole[i]) > 0.999999, `single ${i}`);
  } finally {
    await e.dispose();
  }
});

test('concurrent embed() calls are coalesced and each gets its own vector', async () => {
  const texts = corpus('sentences.txt', 300);
  const e = await Embedder.load({ model: tiny });
  try {
    const whole = await e.embedBatch(texts);
    const singles = await Promise.all(texts.map((t) => e.embed(t)));
    singles.forEach((v, i) => {
      assert.equal(v.length, 64);
      assert.equal(v.byteOffset, 0);
      assert.equal(v.buffer.byteLength, 64 * 4, 'its own buffer');
      assert.ok(cosine(v, whole[i]) > 0.999999, `text ${i}`);
    });
    // Calls arriving while a coalesced call runs go in the next one; results stay in order.
    const first = texts.slice(0, 50).map((t) => e.embed(t));
    await new Promise((r) => setImmediate(r));
    const second = texts.slice(50, 100).map((t) => e.embed(t));
    const all = await Promise.all([...first, ...second]);
    all.forEach((v, i) => assert.ok(cosine(v, whole[i]) > 0.999999, `text ${i}`));
  } finally {
    await e.dispose();
  }
});

test('unload frees the model, the next call reloads it; calls after dispose reject', async () => {
  const e = await Embedder.load({ model: tiny, idleUnload: 0 });
  const before = await e.embed('a sentence');
  await e.unload();
  assert.equal(e.info().loaded, false);
  assert.equal(e.info().unloads, 1);
  const after = await e.embed('a sentence');
  assert.deepEqual(after, before);
  assert.equal(e.info().loads, 2);
  const inFlight = e.embedBatch(corpus('sentences.txt', 300));
  const queued = corpus('sentences.txt', 20).map((t) => e.embed(t));  // coalesced, not sent yet
  const disposing = e.dispose();
  assert.equal(e.dispose(), disposing, 'the same promise');
  const late = e.embed('too late');  // called after dispose(), before it settled
  late.catch(() => {});  // awaited below
  assert.equal((await inFlight).length, 300, 'a call made before dispose() finishes');
  assert.equal((await Promise.all(queued)).length, 20, 'so do coalesced calls made before it');
  await disposing;
  await rejectsWithCode(late, 'invalid_argument', /disposed/);
  await rejectsWithCode(e.embed('x'), 'invalid_argument', /disposed/);
  await rejectsWithCode(e.embedBatch(['x']), 'invalid_argument', /disposed/);
  await rejectsWithCode(e.tokenize('x'), 'invalid_argument', /disposed/);
  await rejectsWithCode(e.unload(), 'invalid_argument', /disposed/);
  await e.dispose();  // twice is harmless
  assert.equal(e.info().disposed, true);
});

test('the idle watcher unloads an unused model and the next call reloads it', async () => {
  const e = await Embedder.load({ model: tiny, idleUnload: 0.05 });
  try {
    await e.embed('warm');
    for (let i = 0; i < 400 && e.info().loaded; ++i) await new Promise((r) => setTimeout(r, 25));
    assert.equal(e.info().loaded, false, 'unloaded after being idle');
    assert.equal((await e.embed('again')).length, 64);
  } finally {
    await e.dispose();
  }
});

test('embedBatch of 2000 sentences never blocks the event loop (longest delay < 5 ms)', async () => {
  const texts = corpus('sentences.txt', 2000);
  assert.equal(texts.length, 2000);
  // One intra-op thread leaves the other core to the JS thread on a 2-core machine.
  const e = await Embedder.load({ model: tiny, threads: 1 });
  try {
    await e.embed('warm up');
    // A blocked JS thread shows in every run; a busy machine's scheduler delays are random, so a
    // run under 5 ms (of at most 10) shows the property without depending on the machine's load.
    const seen = [];
    for (let attempt = 0; attempt < 10; ++attempt) {
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      const rows = await e.embedBatch(texts);
      h.disable();
      assert.equal(rows.length, 2000);
      seen.push(h.max / 1e6);
      if (h.max / 1e6 < 5) break;
    }
    assert.ok(Math.min(...seen) < 5, `longest event-loop delay while embedding, per run: ${seen.map((m) => m.toFixed(2)).join(', ')} ms`);
  } finally {
    await e.dispose();
  }
});

test('a script that loads and embeds exits by itself (no dispose, idle watcher running)', () => {
  const script = `
    const { Embedder } = require('leanembed');
    (async () => {
      const e = await Embedder.load({ model: ${JSON.stringify(tiny)}, idleUnload: 3600 });
      const v = await e.embed('hello');
      console.log('dims', v.length);
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: __dirname, encoding: 'utf8', timeout: 60000 });
  assert.equal(r.error, undefined, `child did not exit by itself: ${r.error && r.error.message}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /dims 64/);
});

// libgomp makes a pool of OpenMP threads for every thread that runs a parallel region; the addon
// runs all model work on one engine thread, so calls landing on different libuv pool threads make
// no new pools (each would add a thread, and past the core count libgomp stops its threads
// spinning). Counted in a fresh process: the earlier tests' calls have run here already.
test('concurrent calls from libuv pool threads add no OpenMP threads (one engine thread)', () => {
  const script = `
    const fs = require('fs');
    const { Embedder } = require('leanembed');
    const tasks = () => fs.readdirSync('/proc/self/task').length;
    (async () => {
      const texts = ${JSON.stringify(corpus('sentences.txt', 64))};
      const e = await Embedder.load({ model: ${JSON.stringify(tiny)}, threads: 2, idleUnload: 0 });
      await e.embedBatch(texts);  // libuv's pool threads, the engine thread and its OpenMP pool exist now
      const before = tasks();
      for (let round = 0; round < 4; ++round) {
        await Promise.all(Array.from({ length: 8 }, (_, i) => e.embedBatch(texts.slice(i))));
      }
      console.log('threads', before, tasks());
      await e.dispose();
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: __dirname, encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  const [, before, after] = r.stdout.match(/threads (\d+) (\d+)/).map(Number);
  assert.equal(after, before, `threads before the concurrent calls ${before}, after ${after}`);
});

// Small runs on one thread: automatic under the passive policy the package sets (fp32: runs under
// 32 tokens), settable, refused below -1, and the vectors are the same bytes either way.
test('parallelMinTokens: automatic with the package\'s passive threads, settable, same vectors', async () => {
  const script = `
    const { Embedder } = require('leanembed');
    (async () => {
      const e = await Embedder.load({ model: ${JSON.stringify(tiny)}, threads: 2, idleUnload: 0 });
      console.log('auto', e.info().parallelMinTokens, process.env.OMP_WAIT_POLICY);
      await e.dispose();
    })();`;
  const env = { ...process.env };
  delete env.OMP_WAIT_POLICY;
  delete env.GOMP_SPINCOUNT;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: __dirname, encoding: 'utf8', timeout: 60000, env });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /auto 32 passive/);

  await rejectsWithCode(Embedder.load({ model: tiny, parallelMinTokens: -2 }), 'invalid_argument', /parallelMinTokens/);
  await rejectsWithCode(Embedder.load({ model: tiny, parallelMinTokens: 1.5 }), 'invalid_argument', /parallelMinTokens/);
  const texts = corpus('sentences.txt', 24);
  const never = await Embedder.load({ model: tiny, threads: 2, parallelMinTokens: 0, idleUnload: 0 });
  const always = await Embedder.load({ model: tiny, threads: 2, parallelMinTokens: 1000000, idleUnload: 0 });
  try {
    assert.equal(never.info().parallelMinTokens, 0);
    assert.equal(always.info().parallelMinTokens, 1000000);
    for (const batch of [texts.slice(0, 1), texts.slice(0, 4), texts]) {
      const a = await never.embedBatch(batch), b = await always.embedBatch(batch);
      a.forEach((row, i) => assert.deepEqual(Buffer.from(row.buffer, row.byteOffset, row.byteLength),
                                             Buffer.from(b[i].buffer, b[i].byteOffset, b[i].byteLength)));
    }
  } finally {
    await never.dispose();
    await always.dispose();
  }
});
