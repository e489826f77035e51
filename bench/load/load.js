// bench/load: drives `leanembed serve` and prints figures — never a verdict. Arrival-rate scenarios
// (TEI's, the ramp, the soak) use an open-model driver of constant arrival rate (paced() below, as
// k6's constant-arrival-rate executor that TEI's benchmark uses); closed-loop scenarios use
// autocannon (npm, in peers/). Scenarios, on the same corpus sentences:
//   1. TEI's: single-sentence requests at a constant arrival rate (--rate, 50/s) for --seconds (30);
//   2. a ramp of arrival rates past capacity (--ramp "25,50,100,200,400,800", --seconds/5 each);
//   3. 32-text requests, closed loop (4 connections), vs `leanembed bench` on the same texts;
//   4. a soak at --soak-rate (25/s) for --soak-seconds (30; --soak = 600): RSS sampled every second,
//      its least-squares slope;
//   5. the same TEI scenario, ramp and 32-text runs against peers/transformers_js_server.js, then
//      throughput at equal p95: per latency bound, the best throughput among the ramp steps each
//      server sustained (every request answered 200, texts/s counted until the last answer within
//      3% of the arrival rate) with its p95 under the bound, and their ratio.
// Reports throughput, p50/p95/p99 latency, the 429 share, other errors, RSS.
//   node bench/load/load.js [--leanembed PATH] [--model DIR] [--dtype fp32|q8|...] [--threads 2]
//                           [--seconds 30] [--quick] [--soak] [--no-transformers-js] [--omp-passive]
//                           [--parallel-min-tokens N]
// --parallel-min-tokens goes to `serve` only (the CLI reference keeps its own default).
// --dtype goes to both servers (and the CLI's reference run): q8 is onnx/model_quantized.onnx for
// both, the file transformers.js loads for dtype 'q8'.
// Talks to 127.0.0.1 only; every run is bounded by its duration.
'use strict';
const { spawn, execFileSync } = require('child_process');
const { createRequire } = require('module');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { performance } = require('perf_hooks');

const root = path.resolve(__dirname, '../..');
const requirePeer = createRequire(path.join(root, 'peers/package.json'));
const autocannon = requirePeer('autocannon');

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const quick = args.includes('--quick');
const program = flag('--leanembed', path.join(root, 'build/release/tools/cli/leanembed'));
const model = path.resolve(flag('--model', path.join(root, '../shared/models/minilm-l6-synthetic')));
const threads = Number(flag('--threads', '2'));
const dtype = flag('--dtype', 'fp32');
const seconds = Number(flag('--seconds', quick ? '6' : '30'));
const rate = Number(flag('--rate', '50'));
const ramp = flag('--ramp', '25,50,100,150,200,250,300,400,800').split(',').map(Number);
const soakSeconds = Number(flag('--soak-seconds', args.includes('--soak') ? '600' : quick ? '10' : '30'));
const soakRate = Number(flag('--soak-rate', '25'));
const withTjs = !args.includes('--no-transformers-js');
const parallelMinTokens = flag('--parallel-min-tokens', '');

// The first 640 corpus sentences: every request's texts rotate through them, and the CLI's reference
// runs read the same ones (the corpus's later sentences are not the same length on average).
const sentences = fs.readFileSync(path.join(root, '../shared/corpus/sentences.txt'), 'utf8').split('\n').filter((s) => s.length).slice(0, 640);

function start(command, argv, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !child.port) { child.port = Number(m[1]); resolve(child); }
    });
    child.on('exit', (code) => { if (!child.port) reject(new Error(`${command} exited ${code}: ${err}`)); });
  });
}
const stop = (child) => new Promise((resolve) => { child.on('exit', resolve); child.kill('SIGTERM'); });
const rssMb = (pid) => {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) / 1024 : 0;
};
const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);

// One closed-loop autocannon run (each connection sends its next request when the last is
// answered); bodies rotate through the corpus. Returns the figures.
async function drive(port, { texts, seconds: duration, connections }) {
  let next = 0;
  const body = () => {
    const batch = [];
    for (let k = 0; k < texts; ++k) batch.push(sentences[next++ % sentences.length]);
    return JSON.stringify({ inputs: texts === 1 ? batch[0] : batch });
  };
  const latencies = [];
  const statuses = {};
  const instance = autocannon({
    url: `http://127.0.0.1:${port}/embed`, method: 'POST', headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: body() }) }],
    connections, duration, timeout: 60,
  });
  instance.on('response', (client, statusCode, bytes, ms) => {
    statuses[statusCode] = (statuses[statusCode] || 0) + 1;
    if (statusCode === 200) latencies.push(ms);
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  const total = Object.values(statuses).reduce((a, b) => a + b, 0) + result.errors + result.timeouts;
  return {
    requests_per_s: total / duration, texts_per_s: (statuses[200] || 0) * texts / duration,
    p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), p99: quantile(latencies, 0.99),
    share_429: total ? (statuses[429] || 0) / total : 0,
    other_errors: total - (statuses[200] || 0) - (statuses[429] || 0),
  };
}

// Constant arrival rate, an open model: request i is sent at t0 + i / rate whether or not earlier
// ones were answered, on keep-alive connections opened as needed (at most maxSockets), and its
// latency counts from that scheduled time (no coordinated omission). Not autocannon's overallRate:
// there each connection sends its share of a second's requests at once when its 1-second timer
// fires (autocannon/lib/httpClient.js, reqsMadeThisSecond), so arrivals come in bursts at the start
// of every second and latencies measure the burst, not the rate. Bounded: rate x seconds requests,
// each with a 60 s timeout.
async function paced(port, { texts, seconds: duration, rate: perSecond, maxSockets = 1000 }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const latencies = [];
  const statuses = {};
  let errors = 0, next = 0;
  const count = Math.round(duration * perSecond);
  const inFlight = new Set();
  const t0 = performance.now();
  for (let i = 0; i < count; ++i) {
    const due = t0 + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const batch = [];
    for (let k = 0; k < texts; ++k) batch.push(sentences[next++ % sentences.length]);
    const body = JSON.stringify({ inputs: texts === 1 ? batch[0] : batch });
    const done = new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/embed', method: 'POST', agent, timeout: 60000,
                                 headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => {
          statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
          if (res.statusCode === 200) latencies.push(performance.now() - due);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => { ++errors; resolve(); });
      req.end(body);
    });
    inFlight.add(done);
    done.then(() => inFlight.delete(done));
  }
  await Promise.all(inFlight);
  agent.destroy();
  // Rates over the time the answers took: past capacity the last answers come after the schedule ends.
  const elapsed = Math.max(duration, (performance.now() - t0) / 1000);
  latencies.sort((a, b) => a - b);
  const total = Object.values(statuses).reduce((a, b) => a + b, 0) + errors;
  return {
    requests_per_s: total / elapsed, texts_per_s: (statuses[200] || 0) * texts / elapsed,
    p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), p99: quantile(latencies, 0.99),
    share_429: total ? (statuses[429] || 0) / total : 0,
    other_errors: total - (statuses[200] || 0) - (statuses[429] || 0),
  };
}

// Waits (at most 120 s) until the server has no request in flight, so a run does not inherit the backlog an
// overload run left (requests its clients gave up on are still queued or running).
async function drained(port) {
  const queued = () => new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve(Number((text.match(/^leanembed_requests_in_flight (\S+)/m) || [])[1] || 0)));
    }).on('error', () => resolve(0));
  });
  for (let i = 0; i < 240 && (await queued()) > 0; ++i) await new Promise((resolve) => setTimeout(resolve, 500));
}

// The transformers.js server answers requests in turn and has no /metrics: one small request, sent
// after the backlog, is answered after it (at most 120 s).
function drainedInTurn(port) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ inputs: 'drain' });
    const req = http.request({ host: '127.0.0.1', port, path: '/embed', method: 'POST', timeout: 120000,
                               headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
                             (res) => { res.resume(); res.on('end', resolve); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', resolve);
    req.end(body);
  });
}

// Runs the ramp on one server, printing a row per step; returns the steps' figures.
async function runRamp(port, pid, label, drain) {
  const steps = [];
  for (const r of ramp) {
    const res = await paced(port, { texts: 1, seconds: Math.max(3, Math.round(seconds / 5)), rate: r });
    res.rss = rssMb(pid).toFixed(0);
    res.rate = r;
    row(`${label}ramp ${r}/s`, res);
    steps.push(res);
    await drain(port);
  }
  return steps;
}

// The best throughput among the ramp steps a server sustained (all 200, texts/s >= 97% of the rate)
// with p95 <= bound.
const sustainedUnder = (steps, bound) => Math.max(0, ...steps
  .filter((s) => s.other_errors === 0 && s.share_429 === 0 && s.texts_per_s >= 0.97 * s.rate && s.p95 <= bound)
  .map((s) => s.texts_per_s));

const row = (name, r) => console.log(`| ${name} | ${r.requests_per_s.toFixed(1)} | ${r.texts_per_s.toFixed(1)} | ${r.p50?.toFixed(1)} | ${r.p95?.toFixed(1)} | ${r.p99?.toFixed(1)} | ${(100 * r.share_429).toFixed(1)}% | ${r.other_errors} | ${r.rss ?? ''} |`);
const header = () => console.log('| run | req/s | texts/s | p50 ms | p95 ms | p99 ms | 429 | other errors | RSS MB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|');

async function main() {
  // The OpenMP setting users get (the program's own default: a short spin, tools/cli/main.cpp's
  // limit_openmp_spinning) unless --omp-passive (a machine shared with other busy processes).
  const env = args.includes('--omp-passive') ? { OMP_WAIT_POLICY: 'passive' } : {};
  const inherited = ['OMP_WAIT_POLICY', 'GOMP_SPINCOUNT'].filter((v) => process.env[v]).map((v) => `${v}=${process.env[v]}`);
  console.log(`# bench/load: ${model}, ${dtype}, ${threads} threads${parallelMinTokens !== '' ? `, serve --parallel-min-tokens ${parallelMinTokens}` : ''}, OpenMP ${env.OMP_WAIT_POLICY ? 'passive' : inherited.join(' ') || "each program's default (serve: passive; bench: GOMP_SPINCOUNT=10000)"}, ${new Date().toISOString()}, load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  // The CLI on the same texts: one text's time, and 32-text batches' throughput.
  const sample = path.join(require('os').tmpdir(), `leanembed-load-${process.pid}.txt`);
  fs.writeFileSync(sample, sentences.join('\n') + '\n');
  // The median of three runs (one run is ~1.5 s: its rate varies by several percent).
  const cliBench = (batch) => [0, 1, 2].map(() => cliBenchOnce(batch)).sort((a, b) => a - b)[1];
  const cliBenchOnce = (batch) => {
    const out = execFileSync(program, ['bench', '--model', model, '--dtype', dtype, '--threads', String(threads), '--input', sample, '--batch-size', String(batch)], { env: { ...process.env, ...env } }).toString();
    return Number(out.match(/sentences\/s\s+([\d.]+)/)[1]);
  };
  const cliOne = cliBench(1), cli32 = cliBench(32);
  fs.unlinkSync(sample);
  console.log(`leanembed bench on the same ${sentences.length} corpus sentences (median of 3 runs): batch 1 ${cliOne.toFixed(1)} texts/s (one text ${(1000 / cliOne).toFixed(2)} ms), batch 32 ${cli32.toFixed(1)} texts/s\n`);

  const serveArgs = ['serve', '--model', model, '--dtype', dtype, '--port', '0', '--threads', String(threads), '--tokenization-workers', '1'];
  if (parallelMinTokens !== '') serveArgs.push('--parallel-min-tokens', parallelMinTokens);
  const server = await start(program, serveArgs, env);
  header();
  const tei = await paced(server.port, { texts: 1, seconds, rate });
  tei.rss = rssMb(server.pid).toFixed(0);
  row(`TEI scenario: 1 sentence at ${rate}/s, ${seconds} s`, tei);
  const ourRamp = await runRamp(server.port, server.pid, '', drained);
  const big = await drive(server.port, { texts: 32, seconds, connections: 4 });
  big.rss = rssMb(server.pid).toFixed(0);
  row('32 texts, closed loop, 4 connections', big);
  // Soak: RSS every second, least-squares slope.
  const samples = [];
  const timer = setInterval(() => samples.push([samples.length, rssMb(server.pid)]), 1000);
  const soak = await paced(server.port, { texts: 1, seconds: soakSeconds, rate: soakRate });
  clearInterval(timer);
  const n = samples.length, mx = samples.reduce((a, s) => a + s[0], 0) / n, my = samples.reduce((a, s) => a + s[1], 0) / n;
  const slope = samples.reduce((a, s) => a + (s[0] - mx) * (s[1] - my), 0) / Math.max(1e-9, samples.reduce((a, s) => a + (s[0] - mx) ** 2, 0));
  soak.rss = `${samples[0]?.[1].toFixed(1)} → ${samples[n - 1]?.[1].toFixed(1)}`;
  row(`soak ${soakRate}/s, ${soakSeconds} s`, soak);
  console.log(`\nsoak RSS slope: ${(slope * 60).toFixed(3)} MB/min over ${n} samples`);
  console.log(`32-text throughput vs leanembed bench (batch 32): ${(100 * big.texts_per_s / cli32).toFixed(1)}%`);
  console.log(`TEI scenario p95 vs one text's encoder time: ${(tei.p95 / (1000 / cliOne)).toFixed(2)}x`);
  const code = await stop(server);
  if (code !== 0) console.log(`leanembed serve exited ${code} after SIGTERM`);

  if (withTjs) {
    const tjs = await start('node', [path.join(root, 'peers/transformers_js_server.js'), model, '0', dtype, String(threads)]);
    console.log('\ntransformers.js server (peers/transformers_js_server.js), same texts:\n');
    header();
    // Single sentences first: the server answers requests in turn, so a backlog of 32-text requests
    // left by a closed-loop run would delay everything after it.
    const tOne = await paced(tjs.port, { texts: 1, seconds, rate });
    tOne.rss = rssMb(tjs.pid).toFixed(0);
    row(`transformers.js: 1 sentence at ${rate}/s`, tOne);
    await drainedInTurn(tjs.port);
    const tjsRamp = await runRamp(tjs.port, tjs.pid, 'transformers.js: ', drainedInTurn);
    const tBig = await drive(tjs.port, { texts: 32, seconds, connections: 4 });
    tBig.rss = rssMb(tjs.pid).toFixed(0);
    row('transformers.js: 32 texts, closed loop, 4 connections', tBig);
    await drainedInTurn(tjs.port);
    console.log('\nsingle sentences, throughput at equal p95 (the best sustained ramp step with p95 under the bound):\n');
    console.log('| p95 bound ms | leanembed texts/s | transformers.js texts/s | ratio |\n|---:|---:|---:|---:|');
    for (const bound of [25, 50, 100, 250, 1000]) {
      const a = sustainedUnder(ourRamp, bound), b = sustainedUnder(tjsRamp, bound);
      console.log(`| ${bound} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${b > 0 ? (a / b).toFixed(2) + 'x' : '-'} |`);
    }
    await stop(tjs);
    console.log(`\n32-text throughput, leanembed / transformers.js: ${(big.texts_per_s / tBig.texts_per_s).toFixed(2)}x (p95 ${big.p95.toFixed(0)} vs ${tBig.p95.toFixed(0)} ms)`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
