import cjs from './transformers.cjs';

export const { pipeline, EmbeddingTensor } = cjs;
