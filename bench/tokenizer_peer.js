// Benchmark peer for bench/tokenizer_bench: the Rust Hugging Face tokenizers through
// @anush008/tokenizers, on the same texts. Run with RAYON_NUM_THREADS=1 for one thread.
//   node tokenizer_peer.js PEERS_DIR TOKENIZER_JSON CORPUS_TXT MAX_LENGTH MIN_SECONDS
// Prints one JSON line: {"texts": n, "tokens": per pass, "encode_s": seconds per pass with
// per-text encode (awaited one by one), "batch_s": seconds per pass with one encodeBatch}.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [peersDir, tokenizerJson, corpus, maxLength, minSecondsArg] = process.argv.slice(2);
  const tk = require(path.join(peersDir, 'node_modules', '@anush008', 'tokenizers'));
  const texts = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l.length > 0);
  const tokenizer = tk.Tokenizer.fromFile(tokenizerJson);
  tokenizer.disablePadding();
  if (maxLength === 'none') tokenizer.disableTruncation();
  else tokenizer.setTruncation(Number(maxLength));
  const minSeconds = Number(minSecondsArg || 2);

  const perText = async () => {
    let tokens = 0;
    for (const t of texts) tokens += (await tokenizer.encode(t)).getIds().length;
    return tokens;
  };
  const batch = async () => {
    let tokens = 0;
    for (const e of await tokenizer.encodeBatch(texts)) tokens += e.getIds().length;
    return tokens;
  };
  const time = async (fn) => {
    await fn();  // warm-up
    let passes = 0, tokens = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0;
    while (elapsed < minSeconds || passes < 2) {
      tokens = await fn();
      passes++;
      elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    }
    return { seconds: elapsed / passes, tokens };
  };
  const a = await time(perText);
  const b = await time(batch);
  console.log(JSON.stringify({ texts: texts.length, tokens: a.tokens, encode_s: a.seconds, batch_s: b.seconds }));
}
main().catch((e) => { console.error(e); process.exit(1); });
