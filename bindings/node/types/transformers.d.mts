export * from './transformers.cjs';
