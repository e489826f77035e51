// Type-checked by test/package.test.cjs (tsc --noEmit): what a CommonJS TypeScript user writes.
import { Embedder } from 'leanembed';
import brainy = require('leanembed/brainy');
import transformers = require('leanembed/transformers');

export async function main(): Promise<number> {
  const e = await Embedder.load('models/x');
  const extractor = await transformers.pipeline('feature-extraction', 'x');
  return e.dims + brainy.default.activations + brainy.createBrainyPlugin().activations + (await extractor(['a'], { pooling: 'mean' })).size;
}
