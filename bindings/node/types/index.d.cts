// Types of the package's main entry, 'leanembed' (README.md says what every option maps to).

/** Which ONNX file of the model folder: fp32 onnx/model.onnx, q8 onnx/model_quantized.onnx, … (as transformers.js). */
export type Dtype = 'fp32' | 'fp16' | 'q8' | 'int8' | 'uint8' | 'q4' | 'q4f16' | 'bnb4';
export type Pooling = 'mean' | 'cls' | 'max' | 'lasttoken' | 'mean_sqrt_len';
/** The library's error codes (leanembed::ErrorCode), found in `error.code`. */
export type ErrorCode = 'invalid_argument' | 'io' | 'model_format' | 'unsupported' | 'out_of_memory' | 'runtime';

/** What every promise of this package rejects with (a TypeError, with code 'invalid_argument', for a wrong argument type). */
export interface LeanembedError extends Error {
  code: ErrorCode;
}

export interface EmbedderOptions {
  /** A model folder, or a Hugging Face id ("Xenova/all-MiniLM-L6-v2") looked up as <modelCacheDir>/<id>/. */
  model: string;
  /** Default 'fp32'. */
  dtype?: Dtype;
  /** An ONNX file to load instead of the dtype's (relative to the folder, or absolute). */
  modelFile?: string;
  /** 'auto' (default: the dtype's ONNX file, else model.safetensors), 'onnx' or 'safetensors'. */
  format?: 'auto' | 'onnx' | 'safetensors';
  /** Where hub ids are looked up and fetched to. Default $LEANEMBED_MODEL_CACHE_DIR, else ./models. */
  modelCacheDir?: string;
  /** Never download a hub id's missing files (default false). */
  localFilesOnly?: boolean;
  /** Hub downloads: revision (default 'main'), endpoint (default $HF_ENDPOINT, else https://huggingface.co), token (default $HF_TOKEN). */
  revision?: string;
  endpoint?: string;
  token?: string;
  /** Intra-op threads; 0 = all cores (default). Process-wide: the last Embedder loaded sets it. */
  threads?: number;
  /** Encoder runs of fewer tokens use one thread: -1 = automatic (default: with the package's
   *  OMP_WAIT_POLICY=passive, fp32 32, q8/int8/uint8 129, q4 64, fp16 0), 0 = never. */
  parallelMinTokens?: number;
  /** Tokens per text including [CLS]/[SEP]; 0 = the model folder's (default). */
  maxLength?: number;
  /** Default: the model folder's (mean without metadata). */
  pooling?: Pooling;
  /** L2-normalize; default: the model folder's (true without metadata). */
  normalize?: boolean;
  /** Keep the first `dims` components (Matryoshka) and renormalize; 0 = all (default). */
  dims?: number;
  /** Texts per encoder run at most (default 32). */
  batchSize?: number;
  /** Real tokens per encoder run at most (default 512). */
  batchTokens?: number;
  /** Keep the work arena between calls (default true); false frees it after each call. */
  keepArena?: boolean;
  /** 'auto' (default), 'fast' or 'interpreter'. */
  path?: 'auto' | 'fast' | 'interpreter';
  /** Memory budget in bytes (0 = none): peak RSS stays within it + the bare process'. */
  maxMemory?: number;
  /** Unload the model after this many idle seconds (default 300; 0 = never); the next call reloads it. */
  idleUnload?: number;
  /** Embedding cache folder (LMDB, shared by processes). Default: none. */
  cache?: string;
  /** In-memory embedding cache bound, bytes (default 0: none). */
  cacheMemory?: number;
}

export interface EmbedderInfo {
  folder: string;
  modelPath: string;
  tokenizerPath: string;
  modelType: string;
  hiddenSize: number;
  layers: number;
  heads: number;
  maxLength: number;
  maxLengthSource: string;
  dims: number;
  pooling: Pooling;
  normalize: boolean;
  dtype: string;
  /** 'fast' or 'interpreter', and why. */
  path: string;
  pathReason: string;
  kernels: string;
  threads: number;
  /** Runs of fewer tokens use one thread (0 = none; the automatic value resolved). */
  parallelMinTokens: number;
  modelFileBytes: number;
  plannedArenaBytes: number;
  memoryBudgetBytes: number;
  loaded: boolean;
  disposed: boolean;
  loads: number;
  unloads: number;
  lastLoadSeconds: number;
  cache: {
    enabled: boolean;
    problem: string;
    hits: number;
    misses: number;
    hitRate: number;
    entriesMemory: number;
    entriesDisk: number;
    bytesMemory: number;
    bytesDisk: number;
  };
}

export interface Tokenized {
  ids: number[];
  tokens: string[];
}

export declare class Embedder {
  private constructor(handle: unknown);
  /** Loads a model off the JavaScript thread (a string is { model: string }). */
  static load(options: EmbedderOptions | string): Promise<Embedder>;
  /** Length of every vector. */
  readonly dims: number;
  embed(text: string): Promise<Float32Array>;
  /** One vector per text, in order: views of one ArrayBuffer (row.slice() keeps one alone). */
  embedBatch(texts: readonly string[]): Promise<Float32Array[]>;
  /** texts.length × dims floats in one array, row i for texts[i]. */
  embedFlat(texts: readonly string[]): Promise<Float32Array>;
  tokenize(text: string): Promise<Tokenized>;
  /** Never loads the model. */
  info(): EmbedderInfo;
  unload(): Promise<void>;
  dispose(): Promise<void>;
}
