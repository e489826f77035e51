'use strict';
// leanembed/transformers: the feature-extraction pipeline of transformers.js
// (@huggingface/transformers) on leanembed — the calls a program such as Brainy makes, unchanged:
//   const extractor = await pipeline('feature-extraction', 'Xenova/all-MiniLM-L6-v2', { dtype, cache_dir,
//     local_files_only, session_options });
//   const out = await extractor(texts, { pooling: 'mean', normalize: true });   // out.data, out.dims, out.tolist()
//   await extractor.dispose();
// leanembed returns pooled sentence vectors only: pooling 'none' (per-token states) is refused.
const { Embedder } = require('./embedder.cjs');
const { typeError, leanembedError, describe } = require('./errors.cjs');

const kTasks = new Set(['feature-extraction', 'embeddings']);
// Pipeline options that are read; any other (device, progress_callback, …) is ignored with a warning.
const kPipelineOptions = new Set(['dtype', 'cache_dir', 'local_files_only', 'revision', 'session_options']);

/** What transformers.js' Tensor offers for pooled embeddings: data, dims, type, size, tolist(). */
class EmbeddingTensor {
  constructor(data, dims) {
    this.data = data;
    this.dims = dims;
    this.type = 'float32';
    this.size = data.length;
  }

  /** Nested plain arrays: [n][d]. */
  tolist() {
    const [n, d] = this.dims;
    const rows = new Array(n);
    for (let i = 0; i < n; ++i) rows[i] = Array.from(this.data.subarray(i * d, (i + 1) * d));
    return rows;
  }

  /** A no-op (the data is an ordinary Float32Array), for code written for transformers.js. */
  dispose() {}
}

// transformers.js' dtype: a string, or an object per model file ({ model: 'q8' }).
function dtypeOf(dtype) {
  if (dtype === undefined || dtype === 'auto') return undefined;
  if (typeof dtype === 'string') return dtype;
  if (dtype && typeof dtype === 'object' && typeof dtype.model === 'string') return dtype.model;
  throw typeError(`pipeline: option 'dtype' must be a string such as 'fp32' or 'q8', got ${describe(dtype)}`);
}

/** Maps the pipeline's options to Embedder.load() options; returns [options, names ignored]. */
function loadOptions(model, options) {
  const ignored = [];
  const load = { model };
  for (const key of Object.keys(options)) {
    if (!kPipelineOptions.has(key) && options[key] !== undefined) ignored.push(key);
  }
  const dtype = dtypeOf(options.dtype);
  if (dtype !== undefined) load.dtype = dtype;
  if (options.cache_dir !== undefined) load.modelCacheDir = options.cache_dir;
  if (options.local_files_only !== undefined) load.localFilesOnly = options.local_files_only;
  if (options.revision !== undefined) load.revision = options.revision;
  const session = options.session_options;
  if (session !== undefined) {
    if (session === null || typeof session !== 'object') {
      throw typeError(`pipeline: option 'session_options' must be an object, got ${describe(session)}`);
    }
    for (const [key, value] of Object.entries(session)) {
      if (key === 'intraOpNumThreads') load.threads = value;
      else if (key === 'enableCpuMemArena') load.keepArena = value;
      else if (value !== undefined) ignored.push(`session_options.${key}`);
    }
  }
  return [load, ignored];
}

/**
 * @param {'feature-extraction'|'embeddings'} task
 * @param {string} model  a model folder, or a hub id looked up in cache_dir
 * @param {object} [options]  dtype, cache_dir, local_files_only, revision, session_options
 */
async function pipeline(task, model, options = {}) {
  if (!kTasks.has(task)) {
    throw leanembedError('unsupported', `pipeline: leanembed implements the 'feature-extraction' task only, got ${JSON.stringify(task)}`);
  }
  if (typeof model !== 'string' || model === '') {
    throw typeError(`pipeline: expected a model folder or hub id as a string, got ${describe(model)}`);
  }
  if (options === null || typeof options !== 'object') throw typeError(`pipeline: options must be an object, got ${describe(options)}`);
  const [base, ignored] = loadOptions(model, options);
  if (ignored.length) {
    process.emitWarning(`leanembed/transformers: options without an equivalent in leanembed were ignored: ${ignored.join(', ')}`,
      { code: 'LEANEMBED_IGNORED_OPTIONS' });
  }

  // One Embedder per (pooling, normalize) asked for; the usual { pooling: 'mean', normalize: true }
  // is loaded now, so a missing model fails here as it does in transformers.js.
  const embedders = new Map();
  let disposed = false;
  const embedderFor = (pooling, normalize) => {
    const key = `${pooling}/${normalize}`;
    let e = embedders.get(key);
    if (!e) {
      e = Embedder.load({ ...base, pooling, normalize });
      e.catch(() => embedders.delete(key));  // a failed load is retried by the next call
      embedders.set(key, e);
    }
    return e;
  };
  const main = await embedderFor('mean', true);

  async function extractor(texts, { pooling = 'none', normalize = false, ...rest } = {}) {
    if (disposed) throw leanembedError('invalid_argument', 'this pipeline was disposed');
    if (pooling === 'none') {
      throw leanembedError('unsupported',
        "leanembed returns sentence vectors only: pass { pooling: 'mean' } (or 'cls', 'max'), not pooling 'none'");
    }
    if (typeof pooling !== 'string') throw typeError(`extractor: option 'pooling' must be a string, got ${describe(pooling)}`);
    if (typeof normalize !== 'boolean') throw typeError(`extractor: option 'normalize' must be a boolean, got ${describe(normalize)}`);
    if (rest.quantize) throw leanembedError('unsupported', "extractor: option 'quantize' (binary/ubinary output) is not supported");
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list)) throw typeError(`extractor: expected a string or an array of strings, got ${describe(texts)}`);
    const embedder = await embedderFor(pooling === 'last_token' ? 'lasttoken' : pooling, normalize);
    const data = await embedder.embedFlat(list);
    return new EmbeddingTensor(data, [list.length, embedder.dims]);
  }
  extractor.task = 'feature-extraction';
  /** The engine's info() for { pooling: 'mean', normalize: true } (leanembed's own, not transformers.js'). */
  extractor.info = () => main.info();
  extractor.dispose = async () => {
    disposed = true;
    const all = [...embedders.values()];
    embedders.clear();
    await Promise.all(all.map(async (p) => {
      const e = await p.catch(() => null);
      if (e) await e.dispose();
    }));
  };
  return extractor;
}

module.exports = { pipeline, EmbeddingTensor };
