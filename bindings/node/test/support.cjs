'use strict';
// Shared by the tests: where ../shared is (models, corpus, references), and small helpers.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..', '..');
const shared = process.env.LEANEMBED_SHARED_DIR || path.join(root, '..', 'shared');
const models = path.join(shared, 'models');
const tiny = path.join(models, 'tiny-bert-synthetic');
const minilm = path.join(models, 'minilm-l6-synthetic');
const peers = process.env.LEANEMBED_PEERS_DIR || path.join(root, 'peers');

if (!fs.existsSync(tiny)) throw new Error(`test models not found at ${models} (set LEANEMBED_SHARED_DIR)`);

function corpus(name = 'sentences.txt', limit = Infinity) {
  const lines = fs.readFileSync(path.join(shared, 'corpus', name), 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => l.replace(/\r$/, '')).slice(0, limit);
}

// expected/<model>/<variant>.json: sentences, input_ids, embeddings (see ../shared/models/README.md).
function reference(model, variant) {
  return JSON.parse(fs.readFileSync(path.join(models, 'expected', model, `${variant}.json`), 'utf8'));
}

function cosine(a, b) {
  if (a.length !== b.length) throw new Error(`cosine: lengths ${a.length} and ${b.length}`);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; ++i) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
}

function minCosine(rowsA, rowsB) {
  if (rowsA.length !== rowsB.length) throw new Error(`minCosine: ${rowsA.length} and ${rowsB.length} rows`);
  let min = Infinity;
  for (let i = 0; i < rowsA.length; ++i) min = Math.min(min, cosine(rowsA[i], rowsB[i]));
  return min;
}

// Rejects with err.code === code (and, if given, a message matching `message`).
async function rejectsWithCode(promiseOrFn, code, message, ctor = Error) {
  const assert = require('assert/strict');
  await assert.rejects(promiseOrFn, (e) => {
    assert.ok(e instanceof ctor, `expected a ${ctor.name}, got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    assert.equal(e.code, code, `code of: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

module.exports = { root, shared, models, tiny, minilm, peers, corpus, reference, cosine, minCosine, rejectsWithCode };
