#!/usr/bin/env node
// Encodes a corpus with Hugging Face's tokenizers (npm `tokenizers`, the Rust library)
// and writes what the Go differential test compares.
// Usage: node encode.js TOKENIZER_JSON CORPUS_JSON OUT_JSON
//   CORPUS_JSON: {"texts": [...], "pairs": [[a, b], ...]}
//   OUT_JSON: {"single": [{ids, tokens, offsets, decoded, decoded_skip, overflowing} or {error}],
//              "nospecial": [{ids, offsets}], "pairs": [{ids, type_ids, offsets, overflowing}]}
//   overflowing: [{ids, type_ids, offsets}, ...], HF's Encoding.overflowing (under truncation).
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
  const overflowing = (e) => e.getOverflowing().map((o) => ({ ids: o.getIds(), type_ids: o.getTypeIds(), offsets: o.getOffsets() }));
  // An encoding HF refuses (a truncation that cannot be met, say) is recorded as
  // {"error": message}; the Go side must then fail too.
  const attempt = async (f) => {
    try {
      return await f();
    } catch (err) {
      return { error: String(err && err.message ? err.message : err) };
    }
  };
  for (const text of corpus.texts) {
    res.single.push(await attempt(async () => {
      const e = await tok.encode(text, null, { addSpecialTokens: true });
      const ids = e.getIds();
      return {
        ids,
        tokens: e.getTokens(),
        offsets: e.getOffsets(),
        decoded: await tok.decode(ids, false),
        decoded_skip: await tok.decode(ids, true),
        overflowing: overflowing(e),
      };
    }));
    res.nospecial.push(await attempt(async () => {
      const n = await tok.encode(text, null, { addSpecialTokens: false });
      return { ids: n.getIds(), offsets: n.getOffsets() };
    }));
  }
  for (const [a, b] of corpus.pairs || []) {
    res.pairs.push(await attempt(async () => {
      const e = await tok.encode(a, b, { addSpecialTokens: true });
      return { ids: e.getIds(), type_ids: e.getTypeIds(), offsets: e.getOffsets(), overflowing: overflowing(e) };
    }));
  }
  fs.writeFileSync(outPath, JSON.stringify(res));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
