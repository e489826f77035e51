import { plugin } from './brainy.cjs';

export * from './brainy.cjs';
export default plugin;
