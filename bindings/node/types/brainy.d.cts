// Types of 'leanembed/brainy': a Brainy 7 plugin (BrainyPlugin) providing 'embeddings' and 'embedBatch'.
import type { EmbedderInfo, EmbedderOptions } from './index.cjs';

/** The part of Brainy's BrainyPluginContext the plugin uses. */
export interface BrainyPluginContextLike {
  registerProvider(key: string, implementation: unknown): void;
}

export type EmbeddingsProvider = (data: string | string[] | Record<string, unknown>) => Promise<number[]>;
export type EmbedBatchProvider = (texts: string[]) => Promise<number[][]>;

export interface LeanembedBrainyPlugin {
  readonly name: 'leanembed';
  /** Loads the model (throws, naming what to fix, if it cannot) and registers the providers. */
  activate(context: BrainyPluginContextLike): Promise<boolean>;
  /** Releases this activation; the last one disposes the engine. */
  deactivate(): Promise<void>;
  /** How many contexts hold the engine now. */
  readonly activations: number;
  info(): Promise<EmbedderInfo>;
}

export interface BrainyPluginOptions extends Partial<EmbedderOptions> {
  /** Where @soulcraft/brainy is resolved from (a path or file URL) when neither `model` nor $LEANEMBED_MODEL is set; default process.cwd(). */
  from?: string | { readonly href: string };
}

export declare function createBrainyPlugin(options?: BrainyPluginOptions): LeanembedBrainyPlugin;
export declare const plugin: LeanembedBrainyPlugin;
export default plugin;
