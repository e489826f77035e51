import cjs from './index.cjs';

export const { Embedder } = cjs;
