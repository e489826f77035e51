import cjs from './brainy.cjs';

export const { createBrainyPlugin, plugin } = cjs;
export default cjs.plugin;
