"""Independent NumPy forward of the Text_to_Python attention seq2seq (float64).

Reads JSON {config, weights: {name: nested list}, src: [[ids]], y: [ids]} on stdin,
runs the 2-layer bidirectional LSTM encoder (PyTorch nn.LSTM equations, gate order
i, f, g, o), the decoder's initial states tanh(W[h_f; h_b] + b), one Bahdanau
attention step e_j = v^T tanh(W_s s + W_h h_j), a = softmax(e), c = sum_j a_j h_j,
the decoder LSTM on [emb(y); c] and the output layer W_o [o; c; emb(y)] + b, and
prints JSON {logits, attention, h, c}.
"""
import json
import sys

import numpy as np

d = json.load(sys.stdin)
cfg = d["config"]
W = {k: np.array(v, dtype=np.float64) for k, v in d["weights"].items()}
src = np.array(d["src"])
y = np.array(d["y"])
H, L = cfg["hidden_dim"], cfg["num_layers"]


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_step(x, h, c, wih, whh, bih, bhh):
    z = x @ wih.T + bih + h @ whh.T + bhh
    i, f, g, o = np.split(z, 4, axis=-1)
    c2 = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c2), c2


B, S = src.shape
x = W["encoder.embedding.weight"][src]
h0, c0 = [], []
for layer in range(L):
    outs = []
    finals = []
    for sfx in ["", "_reverse"]:
        p = lambda n: W[f"encoder.rnn.{n}_l{layer}{sfx}"]
        h = np.zeros((B, H))
        c = np.zeros((B, H))
        seq = np.zeros((B, S, H))
        order = range(S) if sfx == "" else reversed(range(S))
        for t in order:
            h, c = lstm_step(x[:, t], h, c, p("weight_ih"), p("weight_hh"), p("bias_ih"), p("bias_hh"))
            seq[:, t] = h
        outs.append(seq)
        finals.append((h, c))
    x = np.concatenate(outs, axis=-1)
    hf = np.concatenate([finals[0][0], finals[1][0]], axis=-1)
    cf = np.concatenate([finals[0][1], finals[1][1]], axis=-1)
    h0.append(np.tanh(hf @ W["encoder.fc_hidden.weight"].T + W["encoder.fc_hidden.bias"]))
    c0.append(np.tanh(cf @ W["encoder.fc_cell.weight"].T + W["encoder.fc_cell.bias"]))
enc = x  # [B, S, 2H]

s = h0[-1]
e = np.tanh((s @ W["decoder.attention.W_s.weight"].T)[:, None, :] + enc @ W["decoder.attention.W_h.weight"].T) @ W["decoder.attention.v.weight"].T
e = e[..., 0]
if cfg["mask_padding"]:
    e = np.where(src != 0, e, -np.inf)
a = np.exp(e - e.max(axis=1, keepdims=True))
a = a / a.sum(axis=1, keepdims=True)
ctx = np.einsum("bs,bsh->bh", a, enc)
emb = W["decoder.embedding.weight"][y]
inp = np.concatenate([emb, ctx], axis=-1)
hs, cs = [], []
for layer in range(L):
    p = lambda n: W[f"decoder.rnn.{n}_l{layer}"]
    h, c = lstm_step(inp, h0[layer], c0[layer], p("weight_ih"), p("weight_hh"), p("bias_ih"), p("bias_hh"))
    hs.append(h)
    cs.append(c)
    inp = h
logits = np.concatenate([inp, ctx, emb], axis=-1) @ W["decoder.fc_out.weight"].T + W["decoder.fc_out.bias"]
json.dump({"logits": logits.tolist(), "attention": a.tolist(), "h": [v.tolist() for v in hs], "c": [v.tolist() for v in cs]}, sys.stdout)
