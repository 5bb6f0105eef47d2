"""PyTorch twin of BenchmarkTrainStep / BenchmarkGreedy (model/seq2seq/bench_test.go).

Same architecture (Text_to_Python's build_attention_lstm: embedding, 2-layer
bidirectional LSTM encoder, tanh(W[h_f; h_b]) initial states, Bahdanau attention
without biases over all source positions, LSTM decoder on [emb; context], output
layer on [o; context; emb]), same shapes (batch 32, 26 source and 34 target
positions, vocabularies 3000/3700, embed 64, hidden 128), Adam with clipping at 1
and teacher forcing 0.5. Run: /usr/bin/python3 model/seq2seq/testdata/torch_bench.py [threads]
"""
import random
import sys
import time

import torch
import torch.nn as nn

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
torch.manual_seed(1)
random.seed(1)
VS, VT, E, H, L, B, S, T = 3000, 3700, 64, 128, 2, 32, 26, 34


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VS, E, padding_idx=0)
        self.rnn = nn.LSTM(E, H, L, bidirectional=True, batch_first=True, dropout=0.3)
        self.fc_hidden = nn.Linear(2 * H, H)
        self.fc_cell = nn.Linear(2 * H, H)
        self.drop = nn.Dropout(0.3)

    def forward(self, src):
        out, (h, c) = self.rnn(self.drop(self.embedding(src)))
        h = torch.tanh(self.fc_hidden(torch.cat([h[0::2], h[1::2]], dim=2)))
        c = torch.tanh(self.fc_cell(torch.cat([c[0::2], c[1::2]], dim=2)))
        return out, h, c


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_s = nn.Linear(H, H, bias=False)
        self.W_h = nn.Linear(2 * H, H, bias=False)
        self.v = nn.Linear(H, 1, bias=False)

    def forward(self, s, enc):
        e = self.v(torch.tanh(self.W_s(s).unsqueeze(1) + self.W_h(enc))).squeeze(2)
        a = torch.softmax(e, dim=1)
        return a, torch.bmm(a.unsqueeze(1), enc).squeeze(1)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VT, E, padding_idx=0)
        self.attention = Attention()
        self.rnn = nn.LSTM(E + 2 * H, H, L, batch_first=True, dropout=0.3)
        self.fc_out = nn.Linear(H + 2 * H + E, VT)
        self.drop = nn.Dropout(0.3)

    def forward(self, y, h, c, enc):
        emb = self.drop(self.embedding(y))
        a, ctx = self.attention(h[-1], enc)
        o, (h, c) = self.rnn(torch.cat([emb, ctx], dim=1).unsqueeze(1), (h, c))
        return self.fc_out(torch.cat([o.squeeze(1), ctx, emb], dim=1)), a, h, c


enc, dec = Encoder(), Decoder()
params = list(enc.parameters()) + list(dec.parameters())
opt = torch.optim.Adam(params, lr=1e-3)
crit = nn.CrossEntropyLoss(ignore_index=0)
src = torch.randint(4, VS, (B, S))
trg = torch.randint(4, VT, (B, T))


def train_step():
    enc.train(), dec.train()
    opt.zero_grad()
    out, h, c = enc(src)
    y = trg[:, 0]
    logits = []
    for t in range(1, T):
        lg, _, h, c = dec(y, h, c, out)
        logits.append(lg)
        y = trg[:, t] if random.random() < 0.5 else lg.argmax(1)
    loss = crit(torch.stack(logits, 1).reshape(-1, VT), trg[:, 1:].reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


@torch.no_grad()
def greedy():
    enc.eval(), dec.eval()
    out, h, c = enc(src[:1])
    y = torch.tensor([1])
    for _ in range(T - 1):
        lg, a, h, c = dec(y, h, c, out)
        y = lg.argmax(1)


for f, name, n in [(train_step, "train step", 3), (greedy, "greedy decode (33 steps)", 10)]:
    f()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        f()
    dt = (time.perf_counter() - t0) / n
    cpu = (time.process_time() - c0) / n * 1e3
    if f is train_step:
        print(f"PyTorch {torch.__version__}, {threads} threads: {name} {dt * 1e3:.1f} ms ({cpu:.0f} CPU ms), {B * (T - 1) / dt:.0f} tokens/s")
    else:
        print(f"PyTorch {torch.__version__}, {threads} threads: {name} {dt * 1e3:.1f} ms ({cpu:.0f} CPU ms)")
