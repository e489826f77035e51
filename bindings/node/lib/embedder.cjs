'use strict';
// Embedder: the package's main API (README.md). A thin layer over the native addon: argument
// checks, per-text vectors cut out of the one Float32Array the addon fills, concurrent embed()
// calls coalesced into one native call, and a dispose() that lets every call made before it finish.
const native = require('./native.cjs');
const { typeError, leanembedError, describe } = require('./errors.cjs');

const kNative = Symbol('leanembed.native');

class Embedder {
  #inFlight = new Set();  // promises of calls made and not settled yet
  #disposing = null;      // dispose()'s promise, once called
  #queue = { texts: [], waiters: [], running: false };  // embed() calls waiting to be sent together

  /** Use `await Embedder.load(options)`. */
  constructor(handle) {
    if (!handle || typeof handle.embed !== 'function') {
      throw typeError('use `await Embedder.load({ model })` to make an Embedder');
    }
    this[kNative] = handle;
    this.dims = handle.dims;
  }

  /**
   * Loads a model off the JavaScript thread. Options: README.md, "Options".
   * @returns {Promise<Embedder>}
   */
  static async load(options) {
    if (typeof options === 'string') options = { model: options };
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw typeError(`Embedder.load: expected an options object such as { model: 'path/to/folder' }, got ${describe(options)}`);
    }
    return new Embedder(await native.load(options));
  }

  /**
   * One text → its vector (Float32Array of `dims` floats). Calls made while another is running are
   * sent to the engine together, as one batch.
   */
  async embed(text) {
    if (typeof text !== 'string') throw typeError(`embed: expected a string, got ${describe(text)}`);
    this.#checkOpen();
    return this.#track(new Promise((resolve, reject) => {
      const q = this.#queue;
      q.texts.push(text);
      q.waiters.push({ resolve, reject });
      if (q.texts.length === 1 && !q.running) queueMicrotask(() => this.#flush());
    }));
  }

  /**
   * Many texts → one vector each, in input order; one call, batched inside. The rows are views of
   * one ArrayBuffer (row i at byteOffset i × dims × 4): no per-row allocation on the JS thread.
   * Keep a row alone with row.slice().
   */
  async embedBatch(texts) {
    const flat = await this.embedFlat(texts);
    const dims = this.dims;
    const rows = new Array(texts.length);
    for (let i = 0; i < rows.length; ++i) rows[i] = flat.subarray(i * dims, (i + 1) * dims);
    return rows;
  }

  /** Many texts → one Float32Array of texts.length × dims floats (row i = texts[i]). */
  async embedFlat(texts) {
    if (!Array.isArray(texts)) throw typeError(`embedBatch: expected an array of strings, got ${describe(texts)}`);
    for (let i = 0; i < texts.length; ++i) {
      if (typeof texts[i] !== 'string') throw typeError(`embedBatch: texts[${i}] is ${describe(texts[i])}, expected a string`);
    }
    this.#checkOpen();
    return this.#track(this[kNative].embed(texts));
  }

  /** Token ids and token strings as the encoder sees them (after truncation). */
  async tokenize(text) {
    if (typeof text !== 'string') throw typeError(`tokenize: expected a string, got ${describe(text)}`);
    this.#checkOpen();
    return this.#track(this[kNative].tokenize(text));
  }

  /** Model, path, memory and life-cycle facts; never loads the model. */
  info() {
    return this[kNative].info();
  }

  /** Frees the model now; the next call reloads it. Waits (off the JS thread) for calls in flight. */
  async unload() {
    this.#checkOpen();
    return this.#track(this[kNative].unload());
  }

  /**
   * Frees the model for good, once every call made before has settled; calls made after reject
   * with code 'invalid_argument'. Calling it again returns the same promise.
   */
  dispose() {
    if (!this.#disposing) {
      this.#disposing = (async () => {
        while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
        await this[kNative].dispose();
      })();
    }
    return this.#disposing;
  }

  #checkOpen() {
    if (this.#disposing) throw leanembedError('invalid_argument', 'this embedder was disposed');
  }

  #track(promise) {
    this.#inFlight.add(promise);
    const done = () => this.#inFlight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  // Sends the waiting embed() texts as one native call; texts that arrive meanwhile go in the next.
  async #flush() {
    const q = this.#queue;
    if (q.running || q.texts.length === 0) return;
    const { texts, waiters } = q;
    q.texts = [];
    q.waiters = [];
    q.running = true;
    try {
      const flat = await this[kNative].embed(texts);
      const d = this.dims;
      if (waiters.length === 1) waiters[0].resolve(flat);
      else waiters.forEach((w, i) => w.resolve(flat.slice(i * d, (i + 1) * d)));
    } catch (e) {
      for (const w of waiters) w.reject(e);
    } finally {
      q.running = false;
      if (q.texts.length) this.#flush();
    }
  }
}

module.exports = { Embedder };
