'use strict';
// leanembed/brainy: leanembed as Brainy's embedding provider (Brainy 7's plugin contract).
//   import plugin from 'leanembed/brainy';            // or createBrainyPlugin({ model, threads, … })
//   brain.use(plugin); await brain.init(); brain.requireProviders(['embeddings', 'embedBatch']);
// activate(ctx) loads the model and registers 'embeddings' and 'embedBatch'; vectors are plain
// number[] (Brainy stores what it is given). The model is the options' `model`, else
// $LEANEMBED_MODEL, else the folder Brainy ships (node_modules/@soulcraft/brainy/assets/models/
// all-MiniLM-L6-v2), found by resolving @soulcraft/brainy from `from` (default: the working
// directory). Brainy's folder is embedded as Brainy's own engine does: mean pooling, normalized,
// at most 128 tokens (its tokenizer.json's truncation).
const path = require('path');
const { createRequire } = require('module');
const { fileURLToPath } = require('url');
const { Embedder } = require('./embedder.cjs');
const { typeError, leanembedError, describe } = require('./errors.cjs');

const kBrainyModel = path.join('assets', 'models', 'all-MiniLM-L6-v2');
const kBrainyMaxLength = 128;

/** Where Brainy's own model folder is, resolving @soulcraft/brainy from `from`; throws if not found. */
function brainyModelFolder(from) {
  let base = from ?? process.cwd();
  if (base instanceof URL || (typeof base === 'string' && base.startsWith('file:'))) base = fileURLToPath(base);
  if (typeof base !== 'string') throw typeError(`createBrainyPlugin: option 'from' must be a path or file URL, got ${describe(from)}`);
  // createRequire wants a file; a trailing separator makes it resolve from the folder itself.
  const requireFrom = createRequire(base.endsWith(path.sep) || !path.extname(base) ? path.join(base, 'noop.js') : base);
  let pkg;
  try {
    pkg = requireFrom.resolve('@soulcraft/brainy/package.json');
  } catch (e) {
    throw leanembedError('io',
      `leanembed/brainy: no model given and @soulcraft/brainy not found from ${base} (${e.code || e.message}); ` +
      "pass createBrainyPlugin({ model: 'path/to/model-folder' }) or set LEANEMBED_MODEL");
  }
  return path.join(path.dirname(pkg), kBrainyModel);
}

/** The Embedder.load() options the plugin uses. */
function resolveLoadOptions(options) {
  const { model, from, ...rest } = options;
  if (model !== undefined) return { pooling: 'mean', normalize: true, ...rest, model };
  if (process.env.LEANEMBED_MODEL) return { pooling: 'mean', normalize: true, ...rest, model: process.env.LEANEMBED_MODEL };
  return { maxLength: kBrainyMaxLength, pooling: 'mean', normalize: true, ...rest, model: brainyModelFolder(from) };
}

// Brainy's own engine turns its input into one text the same way.
function textOf(data) {
  if (typeof data === 'string') return data;
  if (Array.isArray(data)) return data.join(' ');
  if (data !== null && typeof data === 'object') return JSON.stringify(data);
  throw typeError(`leanembed/brainy embeddings: expected a string, an array of strings or an object, got ${describe(data)}`);
}

// Brainy stores plain number[]. Converting thousands of vectors takes tens of milliseconds, so it
// is done in slices of kRowsPerSlice rows with the event loop let through in between.
const kRowsPerSlice = 64;
async function toNumberRows(flat, n, dims) {
  const rows = new Array(n);
  for (let start = 0; start < n; start += kRowsPerSlice) {
    if (start > 0) await new Promise((resolve) => setImmediate(resolve));
    const end = Math.min(n, start + kRowsPerSlice);
    for (let i = start; i < end; ++i) {
      const row = new Array(dims);
      const base = i * dims;
      for (let j = 0; j < dims; ++j) row[j] = flat[base + j];
      rows[i] = row;
    }
  }
  return rows;
}

/**
 * A Brainy plugin with its own engine. Options: those of Embedder.load() (README.md) plus `from`
 * (where to resolve @soulcraft/brainy from). Activations are counted: the engine is loaded by the
 * first activate() and disposed when every activation was deactivated.
 */
function createBrainyPlugin(options = {}) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError(`createBrainyPlugin: expected an options object, got ${describe(options)}`);
  }
  const settings = { ...options };
  let engine = null;  // Promise<Embedder> while loaded or loading
  let activations = 0;
  let contexts = new WeakSet();

  // The engine, loaded on first use; a provider still called after the last deactivate() reloads it.
  function getEngine() {
    if (!engine) {
      let load;
      try {
        load = Embedder.load(resolveLoadOptions(settings));
      } catch (e) {
        load = Promise.reject(e);
      }
      engine = load;
      load.catch(() => { if (engine === load) engine = null; });  // a failed load is retried later
    }
    return engine;
  }

  const embeddings = async (data) => {
    const text = textOf(data);
    const e = await getEngine();
    return Array.from(await e.embed(text));  // one vector: well under a millisecond
  };

  const embedBatch = async (texts) => {
    if (!Array.isArray(texts)) throw typeError(`leanembed/brainy embedBatch: expected an array of strings, got ${describe(texts)}`);
    const e = await getEngine();
    const flat = await e.embedFlat(texts);
    return toNumberRows(flat, texts.length, e.dims);
  };

  return {
    name: 'leanembed',
    async activate(ctx) {
      if (!ctx || typeof ctx.registerProvider !== 'function') {
        throw typeError('leanembed/brainy: activate(ctx) needs a Brainy plugin context with registerProvider()');
      }
      try {
        await getEngine();
      } catch (e) {
        // Brainy logs a throwing activate() and falls back to its own engine: say what to fix.
        const error = new Error(`leanembed/brainy: could not load the embedding model: ${e.message}`, { cause: e });
        error.code = e.code || 'runtime';
        throw error;
      }
      if (!contexts.has(ctx)) {  // the same context twice is one activation
        contexts.add(ctx);
        ++activations;
      }
      ctx.registerProvider('embeddings', embeddings);
      ctx.registerProvider('embedBatch', embedBatch);
      return true;
    },
    async deactivate() {
      if (activations === 0) return;
      if (--activations > 0) return;
      contexts = new WeakSet();
      const e = engine;
      engine = null;
      if (e) await (await e.catch(() => null))?.dispose();
    },
    /** How many Brainy contexts hold the engine now (activate() minus deactivate()). */
    get activations() {
      return activations;
    },
    /** The loaded engine's info() (loads the model if needed). */
    async info() {
      return (await getEngine()).info();
    },
  };
}

const plugin = createBrainyPlugin();

module.exports = { createBrainyPlugin, default: plugin, plugin };
