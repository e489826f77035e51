// A minimal embedding server over transformers.js, for bench/load's comparison: the same POST /embed
// route as leanembed serve (TEI's: {inputs: string | string[]} → [[f32]]) and GET /health, one
// request at a time through the feature-extraction pipeline (mean pooling, normalised), which is
// how a Node service would wrap it. Prints "listening on http://127.0.0.1:PORT" on stderr.
//   node transformers_js_server.js MODEL_DIR [PORT=0] [DTYPE=fp32] [THREADS=2]
'use strict';
const http = require('http');
const path = require('path');

async function main() {
  const [modelDir, portArg = '0', dtype = 'fp32', threadsArg = '2'] = process.argv.slice(2);
  if (!modelDir) {
    console.error('usage: node transformers_js_server.js MODEL_DIR [PORT] [DTYPE] [THREADS]');
    process.exit(2);
  }
  const { pipeline, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(path.resolve(modelDir)) + '/';
  const threads = Number(threadsArg);
  const extractor = await pipeline('feature-extraction', path.basename(path.resolve(modelDir)), {
    dtype, local_files_only: true, session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  let chain = Promise.resolve();  // one pipeline call at a time (the session is not re-entrant)
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') { res.writeHead(200); res.end(); return; }
    if (req.method !== 'POST' || req.url !== '/embed') { res.writeHead(404); res.end(); return; }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let inputs;
      try {
        inputs = JSON.parse(Buffer.concat(chunks).toString('utf8')).inputs;
        if (typeof inputs === 'string') inputs = [inputs];
        if (!Array.isArray(inputs) || inputs.length === 0) throw new Error('inputs');
      } catch (e) {
        res.writeHead(422, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'bad request', error_type: 'validation' }));
        return;
      }
      chain = chain.then(async () => {
        const out = await extractor(inputs, { pooling: 'mean', normalize: true });
        const rows = out.tolist();
        out.dispose?.();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(rows));
      }).catch((e) => { res.writeHead(500); res.end(String(e)); });
    });
  });
  server.listen(Number(portArg), '127.0.0.1', () => {
    console.error(`transformers.js server listening on http://127.0.0.1:${server.address().port}`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
main().catch((e) => { console.error(e); process.exit(1); });
