'use strict';
// Embedder: the package's main API (README.md). A thin layer over the native addon: argument
// checks, and per-text vectors cut out of the one Float32Array the addon fills.
const native = require('./native.cjs');
const { typeError, describe } = require('./errors.cjs');

const kNative = Symbol('leanembed.native');

class Embedder {
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

  /** One text → its vector (Float32Array of `dims` floats). */
  async embed(text) {
    if (typeof text !== 'string') throw typeError(`embed: expected a string, got ${describe(text)}`);
    return this[kNative].embed([text]);
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

  /** Many texts → one Float32Array of texts.length × dims floats (row i = texts[i]); no per-row copies. */
  async embedFlat(texts) {
    if (!Array.isArray(texts)) throw typeError(`embedBatch: expected an array of strings, got ${describe(texts)}`);
    for (let i = 0; i < texts.length; ++i) {
      if (typeof texts[i] !== 'string') throw typeError(`embedBatch: texts[${i}] is ${describe(texts[i])}, expected a string`);
    }
    return this[kNative].embed(texts);
  }

  /** Token ids and token strings as the encoder sees them (after truncation). */
  async tokenize(text) {
    if (typeof text !== 'string') throw typeError(`tokenize: expected a string, got ${describe(text)}`);
    return this[kNative].tokenize(text);
  }

  /** Model, path, memory and life-cycle facts; never loads the model. */
  info() {
    return this[kNative].info();
  }

  /** Frees the model now; the next call reloads it. Waits (off the JS thread) for calls in flight. */
  unload() {
    return this[kNative].unload();
  }

  /** Frees the model for good: later calls reject with code 'invalid_argument'. */
  dispose() {
    return this[kNative].dispose();
  }
}

module.exports = { Embedder };
