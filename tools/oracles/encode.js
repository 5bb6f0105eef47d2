#!/usr/bin/env node
// Encodes a corpus with Hugging Face's tokenizers (npm `tokenizers`, the Rust library)
// and writes what the Go differential test compares.
// Usage: node encode.js TOKENIZER_JSON CORPUS_JSON OUT_JSON
//   CORPUS_JSON: {"texts": [...], "pairs": [[a, b], ...]}
//   OUT_JSON: {"single": [{ids, tokens, offsets, decoded, decoded_skip}], "nospecial": [{ids}],
//              "pairs": [{ids, type_ids, offsets}]}
'use strict';
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

async function main() {
  const [tokPath, corpusPath, outPath] = process.argv.slice(2);
  if (!outPath) {
    console.error('usage: node encode.js TOKENIZER_JSON CORPUS_JSON OUT_JSON');
    process.exit(2);
  }
  const tok = Tokenizer.fromFile(tokPath);
  const corpus = JSON.parse(fs.readFileSync(corpusPath, 'utf8'));
  const res = { single: [], nospecial: [], pairs: [] };
  for (const text of corpus.texts) {
    const e = await tok.encode(text, null, { addSpecialTokens: true });
    const ids = e.getIds();
    res.single.push({
      ids,
      tokens: e.getTokens(),
      offsets: e.getOffsets(),
      decoded: await tok.decode(ids, false),
      decoded_skip: await tok.decode(ids, true),
    });
    const n = await tok.encode(text, null, { addSpecialTokens: false });
    res.nospecial.push({ ids: n.getIds(), offsets: n.getOffsets() });
  }
  for (const [a, b] of corpus.pairs || []) {
    const e = await tok.encode(a, b, { addSpecialTokens: true });
    res.pairs.push({ ids: e.getIds(), type_ids: e.getTypeIds(), offsets: e.getOffsets() });
  }
  fs.writeFileSync(outPath, JSON.stringify(res));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
