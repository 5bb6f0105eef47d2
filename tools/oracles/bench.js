#!/usr/bin/env node
// Measures Hugging Face tokenizers' (npm `tokenizers`, Rust) encoding throughput on a
// corpus, single-threaded (one encode at a time) and batched (encodeBatch, which
// runs in parallel on all cores). Prints one JSON line: {"single_mbs": x, "batch_mbs": y, "bytes": n}.
// Usage: node bench.js TOKENIZER_JSON CORPUS_JSON   (CORPUS_JSON: {"texts": [...]})
'use strict';
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

async function main() {
  const [tokPath, corpusPath] = process.argv.slice(2);
  if (!corpusPath) {
    console.error('usage: node bench.js TOKENIZER_JSON CORPUS_JSON');
    process.exit(2);
  }
  const tok = Tokenizer.fromFile(tokPath);
  const texts = JSON.parse(fs.readFileSync(corpusPath, 'utf8')).texts;
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0);
  // Warm up (caches, thread pool) on a small part.
  await tok.encodeBatch(texts.slice(0, 8), { addSpecialTokens: false });
  let t0 = process.hrtime.bigint();
  let ntok = 0;
  for (const t of texts) {
    const e = await tok.encode(t, null, { addSpecialTokens: false });
    ntok += e.getLength();
  }
  const single = Number(process.hrtime.bigint() - t0) / 1e9;
  t0 = process.hrtime.bigint();
  const encs = await tok.encodeBatch(texts, { addSpecialTokens: false });
  const batch = Number(process.hrtime.bigint() - t0) / 1e9;
  if (encs.length !== texts.length) throw new Error('encodeBatch returned the wrong number of encodings');
  console.log(JSON.stringify({ single_mbs: bytes / 1e6 / single, batch_mbs: bytes / 1e6 / batch, bytes, tokens: ntok }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
