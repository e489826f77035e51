// Types of 'leanembed/transformers': transformers.js' feature-extraction pipeline on leanembed.
import type { Dtype, EmbedderInfo, Pooling } from './index.cjs';

export interface PipelineOptions {
  /** A dtype, or transformers.js' per-file form { model: 'q8' }. */
  dtype?: Dtype | 'auto' | { model: Dtype };
  /** → modelCacheDir */
  cache_dir?: string;
  /** → localFilesOnly */
  local_files_only?: boolean;
  revision?: string;
  /** intraOpNumThreads → threads; enableCpuMemArena: false → the arena is freed after each call; others ignored (one warning). */
  session_options?: { intraOpNumThreads?: number; enableCpuMemArena?: boolean; [other: string]: unknown };
  /** Other transformers.js options (device, progress_callback, …) are ignored, with one warning. */
  [other: string]: unknown;
}

export interface ExtractorOptions {
  /** 'none' (transformers.js' default: per-token states) is refused: leanembed returns sentence vectors. */
  pooling?: Pooling | 'last_token' | 'none';
  normalize?: boolean;
}

/** What transformers.js' Tensor offers for pooled embeddings. */
export declare class EmbeddingTensor {
  readonly data: Float32Array;
  /** [texts, dims] */
  readonly dims: [number, number];
  readonly type: 'float32';
  readonly size: number;
  tolist(): number[][];
  dispose(): void;
}

export interface FeatureExtractionPipeline {
  (texts: string | readonly string[], options?: ExtractorOptions): Promise<EmbeddingTensor>;
  readonly task: 'feature-extraction';
  /** leanembed's own info() of the engine behind { pooling: 'mean', normalize: true }. */
  info(): EmbedderInfo;
  dispose(): Promise<void>;
}

export declare function pipeline(
  task: 'feature-extraction' | 'embeddings',
  model: string,
  options?: PipelineOptions,
): Promise<FeatureExtractionPipeline>;
