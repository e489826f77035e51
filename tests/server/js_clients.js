// The official clients pointed at `leanembed serve`: OpenAI's `openai` package (embeddings.create,
// which asks for base64 by default) and Hugging Face's `@huggingface/inference` (featureExtraction
// against an endpoint URL, TEI's root route). Run by ctest:
//   node js_clients.js <leanembed program> <model folder> <peers folder>
// Starts the server on 127.0.0.1 (--port 0), checks the clients' vectors bitwise against the
// server's own /embed answer (itself checked against `leanembed embed` by test_server_load), their
// error handling (422 → APIError with the server's message, 401 without the key), then stops it
// with SIGTERM and expects exit code 0. Exits non-zero on the first failure; bounded by a timer.
'use strict';
const { spawn } = require('child_process');
const { createRequire } = require('module');
const assert = require('assert/strict');
const path = require('path');

const [program, model, peers] = process.argv.slice(2);
const requirePeer = createRequire(path.join(peers, 'package.json'));
const { OpenAI } = requirePeer('openai');
const { InferenceClient } = requirePeer('@huggingface/inference');

const guard = setTimeout(() => { console.error('js_clients: timed out'); process.exit(3); }, 120000);

function startServer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['serve', '--model', model, '--port', '0', '--hostname', '127.0.0.1', '--threads', '1', ...args],
                        { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OMP_WAIT_POLICY: 'passive' } });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !child.port) { child.port = Number(m[1]); resolve(child); }
    });
    child.on('exit', (code) => { if (!child.port) reject(new Error(`server exited ${code}: ${err}`)); });
  });
}

function stopServer(child) {
  return new Promise((resolve) => { child.on('exit', (code) => resolve(code)); child.kill('SIGTERM'); });
}

const f32 = (v) => Array.from(Float32Array.from(v));

async function main() {
  const texts = ['The official clients talk to leanembed.', 'A second sentence, to embed in one call.'];
  const server = await startServer(['--api-key', 'k3y']);
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const own = await (await fetch(`${base}/embed`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k3y' },
      body: JSON.stringify({ inputs: texts }),
    })).json();
    assert.equal(own.length, 2);

    // openai: base64 by default, decoded by the client into floats.
    const openai = new OpenAI({ apiKey: 'k3y', baseURL: `${base}/v1`, maxRetries: 0 });
    const r = await openai.embeddings.create({ model: 'leanembed', input: texts });
    assert.equal(r.data.length, 2);
    for (let i = 0; i < 2; ++i) assert.deepEqual(f32(r.data[i].embedding), f32(own[i]), `openai vector ${i}`);
    assert.ok(r.usage.prompt_tokens > 4);
    const asFloat = await openai.embeddings.create({ model: 'leanembed', input: texts[0], encoding_format: 'float' });
    assert.deepEqual(f32(asFloat.data[0].embedding), f32(own[0]));
    const short = await openai.embeddings.create({ model: 'leanembed', input: texts[0], dimensions: 8 });
    assert.equal(short.data[0].embedding.length, 8);
    // Errors reach the caller as the client's typed errors with the server's message.
    await assert.rejects(openai.embeddings.create({ model: 'leanembed', input: Array(33).fill('x') }),
                         (e) => e.status === 422 && /maximum allowed batch size 32/.test(e.message));
    const wrongKey = new OpenAI({ apiKey: 'nope', baseURL: `${base}/v1`, maxRetries: 0 });
    await assert.rejects(wrongKey.embeddings.create({ model: 'leanembed', input: 'x' }), (e) => e.status === 401);

    // @huggingface/inference: featureExtraction against the endpoint (TEI's root route).
    const hf = new InferenceClient('k3y');
    const one = await hf.featureExtraction({ endpointUrl: base, inputs: texts[0] });
    assert.deepEqual(f32(one.flat()), f32(own[0]));
    const both = await hf.featureExtraction({ endpointUrl: base, inputs: texts });
    assert.deepEqual(both.map(f32), own.map(f32));
    const endpoint = hf.endpoint(`${base}/embed`);
    const viaEndpoint = await endpoint.featureExtraction({ inputs: texts, normalize: true });
    assert.deepEqual(viaEndpoint.map(f32), own.map(f32));
    await assert.rejects(new InferenceClient('nope').featureExtraction({ endpointUrl: base, inputs: 'x' }));
  } finally {
    const code = await stopServer(server);
    assert.equal(code, 0, 'server exit code after SIGTERM');
  }
  clearTimeout(guard);
  console.log('js_clients: openai and @huggingface/inference agree with the server');
}

main().catch((e) => { console.error(e); process.exit(1); });
