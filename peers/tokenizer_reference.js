// Reference token ids from the Rust Hugging Face tokenizers (@anush008/tokenizers), for
// leanembed's tokenizer tests and benchmark.
//
//   node tokenizer_reference.js encode TOKENIZER_JSON INPUT_JSON OUTPUT_JSON MAX_LENGTHS
//     INPUT_JSON: a JSON array of texts, each given as the hex of its bytes (so invalid UTF-8
//     can be passed; it is decoded as Rust's String::from_utf8_lossy does, one U+FFFD per
//     maximal ill-formed subpart — Node's WHATWG decoder follows the same rule).
//     MAX_LENGTHS: comma-separated truncation lengths ("none" = no truncation).
//     OUTPUT_JSON: {"<max_length>": [{"ids": [...], "type_ids": [...], "mask": [...],
//     "tokens": [...]}, ...]}. Padding is disabled, truncation set explicitly.
//   node tokenizer_reference.js unicode OUTPUT_TXT
//     One line per code point (surrogates excluded): hex, clean_text result, strip_accents
//     result, lowercase result, handle_chinese_chars (1/0), BertPreTokenizer piece count of
//     "a<c>a", NFD of <c>, NFD of "a\u0301<c>", NFD of "a<c>\u0334" (code points in hex
//     joined by ".", "-" for empty).
'use strict';
const fs = require('fs');
const path = require('path');
const tk = require(path.join(__dirname, 'node_modules', '@anush008', 'tokenizers'));

async function encodeMode(tokenizerPath, inputPath, outputPath, lengths) {
  const texts = JSON.parse(fs.readFileSync(inputPath, 'utf8')).map((h) => Buffer.from(h, 'hex').toString('utf8'));
  const tokenizer = tk.Tokenizer.fromFile(tokenizerPath);
  tokenizer.disablePadding();
  const out = {};
  for (const len of lengths.split(',')) {
    if (len === 'none') tokenizer.disableTruncation();
    else tokenizer.setTruncation(Number(len), { strategy: 'LongestFirst', direction: 'right', stride: 0 });
    const results = [];
    for (const text of texts) {
      const e = await tokenizer.encode(text);
      results.push({ ids: e.getIds(), type_ids: e.getTypeIds(), mask: e.getAttentionMask(), tokens: e.getTokens() });
    }
    out[len] = results;
  }
  fs.writeFileSync(outputPath, JSON.stringify(out));
}

function unicodeMode(outputPath) {
  const clean = tk.bertNormalizer({ cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false });
  const strip = tk.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false });
  const lower = tk.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: true });
  const cjk = tk.bertNormalizer({ cleanText: false, handleChineseChars: true, stripAccents: false, lowercase: false });
  const nfd = tk.nfdNormalizer();
  const pre = tk.bertPreTokenizer();
  const hex = (s) => Array.from(s).map((c) => c.codePointAt(0).toString(16)).join('.') || '-';
  const lines = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    lines.push([cp.toString(16), hex(clean.normalizeString(c)), hex(strip.normalizeString(c)),
      hex(lower.normalizeString(c)), cjk.normalizeString(c).length > c.length ? '1' : '0',
      String(pre.preTokenizeString('a' + c + 'a').length), hex(nfd.normalizeString(c)),
      hex(nfd.normalizeString('a\u0301' + c)), hex(nfd.normalizeString('a' + c + '\u0334'))].join(' '));
  }
  fs.writeFileSync(outputPath, lines.join('\n') + '\n');
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'encode' && args.length === 4) return encodeMode(...args);
  if (mode === 'unicode' && args.length === 1) return unicodeMode(...args);
  console.error('usage: tokenizer_reference.js encode TOKENIZER_JSON INPUT_JSON OUTPUT_JSON MAX_LENGTHS\n' +
                '       tokenizer_reference.js unicode OUTPUT_TXT');
  process.exit(2);
}
main().catch((e) => { console.error(e); process.exit(1); });
