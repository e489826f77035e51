// Type-checked by test/package.test.cjs (tsc --noEmit): what an ESM TypeScript user writes.
import { Embedder, type LeanembedError } from 'leanembed';
import { pipeline } from 'leanembed/transformers';
import plugin, { createBrainyPlugin } from 'leanembed/brainy';

export async function main(): Promise<number> {
  const e = await Embedder.load({ model: 'models/x', dtype: 'q8', threads: 2, maxLength: 128, idleUnload: 0 });
  const v: Float32Array = await e.embed('a');
  const rows: Float32Array[] = await e.embedBatch(['a', 'b']);
  const t = await e.tokenize('a');
  const ids: number[] = t.ids;
  const info = e.info();
  await e.unload();
  await e.dispose();
  const extractor = await pipeline('feature-extraction', 'Xenova/all-MiniLM-L6-v2', { dtype: 'fp32', session_options: { intraOpNumThreads: 1 } });
  const out = await extractor(['a'], { pooling: 'mean', normalize: true });
  const list: number[][] = out.tolist();
  const [n, d]: [number, number] = out.dims;
  await extractor.dispose();
  const p = createBrainyPlugin({ model: 'x', from: 'file:///tmp/' });
  const ok: boolean = await plugin.activate({ registerProvider() {} });
  await p.deactivate();
  const err = new Error('x') as LeanembedError;
  return v.length + rows.length + ids.length + info.dims + list.length + n + d + (ok ? 1 : 0) + err.code.length;
}
