#!/usr/bin/python3
"""Independent float64 NumPy forward passes of Hugging Face model families, the
oracle of model/numpy_families_test.go.

Written from transformers' modelling code (transformers 5, main branch of 2026:
modeling_llama.py, modeling_mistral.py, modeling_qwen2.py, modeling_phi3.py,
modeling_phi.py, modeling_gemma.py, modeling_gemma2.py, modeling_gpt_neo.py,
modeling_gptj.py, modeling_codegen.py, modeling_roberta.py, masking_utils.py and
modeling_rope_utils.py as of 2026, with standardize_rope_params' handling of
original_max_position_embeddings and yarn's explicit factor),
sharing no code with the Go runtime. Everything is float64; the weights are read
from model.safetensors (F32) with a small safetensors parser.

stdin: {"dir": model folder, "ids": [...], "new": max new tokens (0: none),
        "rope_seq_lens": [...] (optional)}
stdout: {"attentions": [L][H][n][n], "hidden": [L+1][n][D] (embedding, each
        block's output, then the final norm's output for decoders), "logits":
        [n][V], "generated": prompt + greedy continuation, "generation_attentions":
        [L][H][M][M] (the prompt's rows, then each decode step's query row; M = prompt
        + new tokens - 1), "rope": [{inv_freq,
        scale}] per requested sequence length}
"""
import json
import math
import struct
import sys

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info["dtype"]
        s, e = info["data_offsets"]
        out[name] = np.frombuffer(b[8 + n + s : 8 + n + e], dtype="<f4").astype(np.float64).reshape(info["shape"])
    return out


def get(cfg, key, default):
    v = cfg.get(key)
    return default if v is None else v


# ---------------------------------------------------------------- RoPE (modeling_rope_utils.py)


def rope_dict(cfg):
    rp = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    rp = dict(rp)
    rp.setdefault("rope_theta", get(cfg, "rope_theta", 10000.0))
    rp["rope_type"] = rp.get("rope_type", rp.get("type", "default"))
    return rp


def orig_max(cfg, rp):
    """standardize_rope_params: a top-level original_max_position_embeddings wins, then the RoPE dict's, then max."""
    return cfg.get("original_max_position_embeddings") or rp.get("original_max_position_embeddings") or cfg.get("max_position_embeddings")


def inv_freq(cfg, dim, seq_len):
    """Inverse frequencies [dim/2] and cos/sin scaling for a pass whose largest position is seq_len-1."""
    rp = rope_dict(cfg)
    base = float(rp["rope_theta"])
    typ = rp["rope_type"]
    maxpos = cfg.get("max_position_embeddings")
    ar = np.arange(0, dim, 2, dtype=np.float64) / dim
    if typ == "default":
        return 1.0 / base**ar, 1.0
    if typ == "linear":
        return 1.0 / base**ar / rp["factor"], 1.0
    if typ == "dynamic":
        factor = rp["factor"]
        s = max(seq_len, maxpos)
        base = base * ((factor * s / maxpos) - (factor - 1)) ** (dim / (dim - 2))
        return 1.0 / base**ar, 1.0
    if typ == "yarn":
        orig = orig_max(cfg, rp)
        factor = rp.get("factor") or maxpos / orig

        def mscale(s, m=1.0):
            return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0

        att = rp.get("attention_factor")
        if att is None:
            if rp.get("mscale") and rp.get("mscale_all_dim"):
                att = mscale(factor, rp["mscale"]) / mscale(factor, rp["mscale_all_dim"])
            else:
                att = mscale(factor)
        beta_fast = rp.get("beta_fast") or 32
        beta_slow = rp.get("beta_slow") or 1

        def corr(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

        low, high = corr(beta_fast), corr(beta_slow)
        if rp.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
        pos = base**ar
        extra, inter = 1.0 / pos, 1.0 / (factor * pos)
        ef = 1 - ramp
        return inter * (1 - ef) + extra * ef, att
    if typ == "longrope":
        orig = orig_max(cfg, rp)
        factor = rp.get("factor") or maxpos / orig
        att = rp.get("attention_factor")
        if att is None:
            att = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(orig))
        ext = np.array(rp["long_factor"] if seq_len > orig else rp["short_factor"], dtype=np.float64)
        return 1.0 / (ext * base**ar), att
    if typ == "llama3":
        inv = 1.0 / base**ar
        factor, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        old = orig_max(cfg, rp)
        low_wave, high_wave = old / lo, old / hi
        wave = 2 * math.pi / inv
        out = np.where(wave > low_wave, inv / factor, inv)
        smooth = (old / wave - lo) / (hi - lo)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wave < high_wave) & ~(wave > low_wave)
        return np.where(medium, smoothed, out), 1.0
    raise SystemExit("unknown rope_type " + typ)


def rope_half(x, pos, inv, scale):
    """Rotate-half RoPE (Llama, GPT-NeoX, Phi) of x [H, T, rot] at positions pos."""
    ang = np.outer(pos, inv)
    emb = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(emb) * scale, np.sin(emb) * scale
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


def rope_interleaved(x, pos, inv):
    """GPT-J/CodeGen rotate_every_two RoPE of x [H, T, rot]."""
    ang = np.outer(pos, inv)
    cos, sin = np.repeat(np.cos(ang), 2, -1), np.repeat(np.sin(ang), 2, -1)
    rot = np.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)
    return x * cos + rot * sin


def partial(fn, x, rot):
    if rot >= x.shape[-1]:
        return fn(x)
    return np.concatenate([fn(x[..., :rot]), x[..., rot:]], -1)


# ---------------------------------------------------------------- layers


def rms(x, w, eps, plus_one=False):
    y = x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps)
    return y * (1 + w) if plus_one else y * w


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def lin(x, W, w, b=None):
    y = x @ W[w].T
    return y + W[b] if b is not None else y


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gelu_erf(x):
    from math import erf

    return 0.5 * x * (1 + np.vectorize(erf)(x / math.sqrt(2)))


def act(name):
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_approximate"):
        return gelu_tanh
    if name in ("silu", "swish"):
        return lambda x: x / (1 + np.exp(-x))
    if name == "relu":
        return lambda x: np.maximum(x, 0)
    return gelu_erf


def heads(x, n):
    t, d = x.shape
    return x.reshape(t, n, d // n).transpose(1, 0, 2)


def merge(x):
    return x.transpose(1, 0, 2).reshape(x.shape[1], -1)


def attend(q, k, v, qpos, kpos, window, scale, causal=True, softcap=None, keymask=None):
    """softmax(q·kᵀ·scale (soft-capped) + mask)·v with GQA; returns output [T, H·hd] and pattern [H, T, C]."""
    g = q.shape[0] // k.shape[0]
    k, v = np.repeat(k, g, 0), np.repeat(v, g, 0)
    s = q @ k.transpose(0, 2, 1) * scale
    if softcap:
        s = np.tanh(s / softcap) * softcap
    i, j = np.asarray(qpos)[:, None], np.asarray(kpos)[None, :]
    ok = (j <= i) if causal else np.ones((len(qpos), len(kpos)), bool)
    if window:
        ok = ok & (j > i - window)
    if keymask is not None:
        ok = ok & keymask[None, :]
    s = np.where(ok[None], s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return merge(p @ v), p


# ---------------------------------------------------------------- families


class Decoder:
    """A decoder with a KV cache; subclasses define embed, block, final, head."""

    def __init__(self, cfg, W):
        self.c, self.W = cfg, W
        self.L = cfg[self.keys["layers"]]
        self.H = cfg[self.keys["heads"]]
        self.D = cfg[self.keys["hidden"]]
        self.KV = get(cfg, "num_key_value_heads", self.H)
        self.hd = get(cfg, "head_dim", self.D // self.H)
        self.cache = [None] * self.L

    keys = {"layers": "num_hidden_layers", "heads": "num_attention_heads", "hidden": "hidden_size"}

    def window(self, l):
        return 0

    def step(self, ids, past):
        """Runs tokens ids at positions past.. through the model, extending the cache."""
        pos = np.arange(past, past + len(ids))
        x = self.embed(np.asarray(ids), pos)
        hidden, atts = [x], []
        for l in range(self.L):
            x, p = self.block(l, x, pos)
            hidden.append(x)
            atts.append(p)
        y = self.final(x)
        hidden[-1] = y
        return hidden, atts, self.head(y)

    def kv(self, l, k, v):
        if self.cache[l] is not None:
            k = np.concatenate([self.cache[l][0], k], 1)
            v = np.concatenate([self.cache[l][1], v], 1)
        self.cache[l] = (k, v)
        return k, v


class Llama(Decoder):
    def window(self, l):
        c = self.c
        mt = c["model_type"]
        if mt == "qwen2":
            w = c.get("sliding_window") if c.get("use_sliding_window") else None
            types = c.get("layer_types") or [
                "sliding_attention" if w is not None and i >= get(c, "max_window_layers", 28) else "full_attention"
                for i in range(self.L)
            ]
        else:
            w = c["sliding_window"] if "sliding_window" in c else (4096 if mt == "mistral" else None)
            types = c.get("layer_types") or ["sliding_attention"] * self.L
        return w if (w and types[l] == "sliding_attention") else 0

    def rot(self):
        return int(self.hd * get(self.c, "partial_rotary_factor", 1.0))

    def embed(self, ids, pos):
        return self.W["model.embed_tokens.weight"][ids]

    def qkv(self, l, h):
        p = f"model.layers.{l}.self_attn."
        b = self.c["model_type"] == "qwen2" or self.c.get("attention_bias")
        bias = (lambda n: p + n + ".bias") if b else (lambda n: None)
        q = heads(lin(h, self.W, p + "q_proj.weight", bias("q_proj")), self.H)
        k = heads(lin(h, self.W, p + "k_proj.weight", bias("k_proj")), self.KV)
        v = heads(lin(h, self.W, p + "v_proj.weight", bias("v_proj")), self.KV)
        return q, k, v

    def out(self, l, a):
        p = f"model.layers.{l}.self_attn.o_proj."
        ob = self.c.get("attention_bias") and self.c["model_type"] != "qwen2"
        return lin(a, self.W, p + "weight", p + "bias" if ob else None)

    def mlp(self, l, h):
        p = f"model.layers.{l}.mlp."
        f = act(get(self.c, "hidden_act", "silu"))
        return lin(f(lin(h, self.W, p + "gate_proj.weight")) * lin(h, self.W, p + "up_proj.weight"), self.W, p + "down_proj.weight")

    def attn(self, l, h, pos, scale=None, softcap=None):
        q, k, v = self.qkv(l, h)
        inv, sc = inv_freq(self.c, self.rot(), int(pos[-1]) + 1)
        r = self.rot()
        q = partial(lambda t: rope_half(t, pos, inv, sc), q, r)
        k = partial(lambda t: rope_half(t, pos, inv, sc), k, r)
        k, v = self.kv(l, k, v)
        kpos = np.arange(k.shape[1])
        return attend(q, k, v, pos, kpos, self.window(l), scale or self.hd**-0.5, softcap=softcap)

    def block(self, l, x, pos):
        eps = get(self.c, "rms_norm_eps", 1e-6)
        p = f"model.layers.{l}."
        a, pat = self.attn(l, rms(x, self.W[p + "input_layernorm.weight"], eps), pos)
        x = x + self.out(l, a)
        x = x + self.mlp(l, rms(x, self.W[p + "post_attention_layernorm.weight"], eps))
        return x, pat

    def final(self, x):
        return rms(x, self.W["model.norm.weight"], get(self.c, "rms_norm_eps", 1e-6))

    def head(self, y):
        name = "model.embed_tokens.weight" if self.c.get("tie_word_embeddings") else "lm_head.weight"
        return y @ self.W[name].T


class Phi3(Llama):
    def window(self, l):
        return get(self.c, "sliding_window", 0)

    def qkv(self, l, h):
        qkv = lin(h, self.W, f"model.layers.{l}.self_attn.qkv_proj.weight")
        a, b = self.H * self.hd, self.H * self.hd + self.KV * self.hd
        return heads(qkv[:, :a], self.H), heads(qkv[:, a:b], self.KV), heads(qkv[:, b:], self.KV)

    def out(self, l, a):
        return lin(a, self.W, f"model.layers.{l}.self_attn.o_proj.weight")

    def mlp(self, l, h):
        p = f"model.layers.{l}.mlp."
        gu = lin(h, self.W, p + "gate_up_proj.weight")
        m = gu.shape[-1] // 2
        f = act(get(self.c, "hidden_act", "silu"))
        return lin(gu[:, m:] * f(gu[:, :m]), self.W, p + "down_proj.weight")

    def head(self, y):
        name = "model.embed_tokens.weight" if self.c.get("tie_word_embeddings") else "lm_head.weight"
        return y @ self.W[name].T


class Phi(Llama):
    def window(self, l):
        return 0

    def rot(self):
        return int(self.hd * get(self.c, "partial_rotary_factor", 0.5))

    def qkv(self, l, h):
        p = f"model.layers.{l}.self_attn."
        q = heads(lin(h, self.W, p + "q_proj.weight", p + "q_proj.bias"), self.H)
        k = heads(lin(h, self.W, p + "k_proj.weight", p + "k_proj.bias"), self.KV)
        v = heads(lin(h, self.W, p + "v_proj.weight", p + "v_proj.bias"), self.KV)
        return q, k, v

    def block(self, l, x, pos):
        p = f"model.layers.{l}."
        eps = get(self.c, "layer_norm_eps", 1e-5)
        h = layer_norm(x, self.W[p + "input_layernorm.weight"], self.W[p + "input_layernorm.bias"], eps)
        a, pat = self.attn(l, h, pos)
        a = lin(a, self.W, p + "self_attn.dense.weight", p + "self_attn.dense.bias")
        f = act(get(self.c, "hidden_act", "gelu_new"))
        m = lin(f(lin(h, self.W, p + "mlp.fc1.weight", p + "mlp.fc1.bias")), self.W, p + "mlp.fc2.weight", p + "mlp.fc2.bias")
        return x + a + m, pat

    def final(self, x):
        W = self.W
        return layer_norm(x, W["model.final_layernorm.weight"], W["model.final_layernorm.bias"], get(self.c, "layer_norm_eps", 1e-5))

    def head(self, y):
        return y @ self.W["lm_head.weight"].T + self.W["lm_head.bias"]


class Gemma(Llama):
    def window(self, l):
        c = self.c
        if c["model_type"] == "gemma":
            return 0
        types = c.get("layer_types") or ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(self.L)]
        return get(c, "sliding_window", 0) if types[l] == "sliding_attention" else 0

    def embed(self, ids, pos):
        return self.W["model.embed_tokens.weight"][ids] * math.sqrt(self.D)

    def mlp(self, l, h):
        p = f"model.layers.{l}.mlp."
        f = act(get(self.c, "hidden_activation", "gelu_pytorch_tanh"))
        return lin(f(lin(h, self.W, p + "gate_proj.weight")) * lin(h, self.W, p + "up_proj.weight"), self.W, p + "down_proj.weight")

    def block(self, l, x, pos):
        c, W = self.c, self.W
        eps = get(c, "rms_norm_eps", 1e-6)
        p = f"model.layers.{l}."
        n = lambda name, t: rms(t, W[p + name + ".weight"], eps, plus_one=True)
        if c["model_type"] == "gemma":
            a, pat = self.attn(l, n("input_layernorm", x), pos)
            x = x + self.out(l, a)
            return x + self.mlp(l, n("post_attention_layernorm", x)), pat
        scale = get(c, "query_pre_attn_scalar", self.hd) ** -0.5
        a, pat = self.attn(l, n("input_layernorm", x), pos, scale=scale, softcap=c.get("attn_logit_softcapping"))
        x = x + n("post_attention_layernorm", self.out(l, a))
        x = x + n("post_feedforward_layernorm", self.mlp(l, n("pre_feedforward_layernorm", x)))
        return x, pat

    def final(self, x):
        return rms(x, self.W["model.norm.weight"], get(self.c, "rms_norm_eps", 1e-6), plus_one=True)

    def head(self, y):
        z = y @ self.W["model.embed_tokens.weight"].T
        cap = self.c.get("final_logit_softcapping")
        return np.tanh(z / cap) * cap if cap else z


class GPTNeo(Decoder):
    keys = {"layers": "num_layers", "heads": "num_heads", "hidden": "hidden_size"}

    def window(self, l):
        types = [t for kinds, n in self.c["attention_types"] for _ in range(n) for t in kinds]
        return self.c["window_size"] if types[l] == "local" else 0

    def embed(self, ids, pos):
        return self.W["transformer.wte.weight"][ids] + self.W["transformer.wpe.weight"][pos]

    def block(self, l, x, pos):
        W, eps = self.W, get(self.c, "layer_norm_epsilon", 1e-5)
        p = f"transformer.h.{l}."
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        a = p + "attn.attention."
        q, k, v = (heads(lin(h, W, a + n + "_proj.weight"), self.H) for n in "qkv")
        k, v = self.kv(l, k, v)
        o, pat = attend(q, k, v, pos, np.arange(k.shape[1]), self.window(l), 1.0)
        x = x + lin(o, W, a + "out_proj.weight", a + "out_proj.bias")
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        f = act(get(self.c, "activation_function", "gelu_new"))
        return x + lin(f(lin(h, W, p + "mlp.c_fc.weight", p + "mlp.c_fc.bias")), W, p + "mlp.c_proj.weight", p + "mlp.c_proj.bias"), pat

    def final(self, x):
        return layer_norm(x, self.W["transformer.ln_f.weight"], self.W["transformer.ln_f.bias"], get(self.c, "layer_norm_epsilon", 1e-5))

    def head(self, y):
        return y @ self.W["transformer.wte.weight"].T


class GPTJ(Decoder):
    keys = {"layers": "n_layer", "heads": "n_head", "hidden": "n_embd"}

    def __init__(self, cfg, W):
        super().__init__(cfg, W)
        self.KV, self.hd = self.H, self.D // self.H

    def embed(self, ids, pos):
        return self.W["transformer.wte.weight"][ids]

    def qkv(self, l, h):
        a = f"transformer.h.{l}.attn."
        return (heads(lin(h, self.W, a + n + "_proj.weight"), self.H) for n in "qkv")

    def block(self, l, x, pos):
        W, eps = self.W, get(self.c, "layer_norm_epsilon", 1e-5)
        p = f"transformer.h.{l}."
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        q, k, v = self.qkv(l, h)
        r = get(self.c, "rotary_dim", self.hd)
        inv = 1.0 / 10000 ** (np.arange(0, r, 2, dtype=np.float64) / r)
        q = partial(lambda t: rope_interleaved(t, pos, inv), q, r)
        k = partial(lambda t: rope_interleaved(t, pos, inv), k, r)
        k, v = self.kv(l, k, v)
        o, pat = attend(q, k, v, pos, np.arange(k.shape[1]), 0, self.hd**-0.5)
        a = lin(o, W, p + "attn.out_proj.weight")
        f = act(get(self.c, "activation_function", "gelu_new"))
        m = lin(f(lin(h, W, p + "mlp.fc_in.weight", p + "mlp.fc_in.bias")), W, p + "mlp.fc_out.weight", p + "mlp.fc_out.bias")
        return x + a + m, pat

    def final(self, x):
        return layer_norm(x, self.W["transformer.ln_f.weight"], self.W["transformer.ln_f.bias"], get(self.c, "layer_norm_epsilon", 1e-5))

    def head(self, y):
        return y @ self.W["lm_head.weight"].T + self.W["lm_head.bias"]


class CodeGen(GPTJ):
    def qkv(self, l, h):
        qkv = lin(h, self.W, f"transformer.h.{l}.attn.qkv_proj.weight")  # [T, 3·D]
        mp = 4
        t = qkv.shape[0]
        local = self.D // mp
        split = qkv.reshape(t, mp, 3 * local)
        q, v, k = split[..., :local], split[..., local : 2 * local], split[..., 2 * local :]
        return tuple(z.reshape(t, self.H, self.hd).transpose(1, 0, 2) for z in (q, k, v))


def roberta(cfg, W, ids):
    """RobertaForMaskedLM / XLMRobertaForMaskedLM: BERT with positions padding_idx+1+i."""
    eps = get(cfg, "layer_norm_eps", 1e-12)
    H, D = cfg["num_attention_heads"], cfg["hidden_size"]
    pad = get(cfg, "pad_token_id", 1)
    ids = np.asarray(ids)
    m = (ids != pad).astype(np.int64)
    pos = np.cumsum(m) * m + pad
    e = "roberta.embeddings."
    x = W[e + "word_embeddings.weight"][ids] + W[e + "position_embeddings.weight"][pos] + W[e + "token_type_embeddings.weight"][0]
    x = layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)
    hidden, atts = [x], []
    f = act(get(cfg, "hidden_act", "gelu"))
    for l in range(cfg["num_hidden_layers"]):
        p = f"roberta.encoder.layer.{l}."
        s = p + "attention.self."
        q, k, v = (heads(lin(x, W, s + n + ".weight", s + n + ".bias"), H) for n in ("query", "key", "value"))
        n = len(ids)
        o, pat = attend(q, k, v, np.arange(n), np.arange(n), 0, (D // H) ** -0.5, causal=False)
        x = layer_norm(x + lin(o, W, p + "attention.output.dense.weight", p + "attention.output.dense.bias"), W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        m = lin(f(lin(x, W, p + "intermediate.dense.weight", p + "intermediate.dense.bias")), W, p + "output.dense.weight", p + "output.dense.bias")
        x = layer_norm(x + m, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
        hidden.append(x)
        atts.append(pat)
    y = f(lin(x, W, "lm_head.dense.weight", "lm_head.dense.bias"))
    y = layer_norm(y, W["lm_head.layer_norm.weight"], W["lm_head.layer_norm.bias"], eps)
    dec = W.get("lm_head.decoder.weight", W[e + "word_embeddings.weight"])
    return hidden, atts, y @ dec.T + W["lm_head.bias"]


FAMILIES = {
    "llama": Llama, "mistral": Llama, "qwen2": Llama, "phi3": Phi3, "phi": Phi,
    "gemma": Gemma, "gemma2": Gemma, "gpt_neo": GPTNeo, "gptj": GPTJ, "codegen": CodeGen,
}


def main():
    req = json.load(sys.stdin)
    with open(req["dir"] + "/config.json") as f:
        cfg = json.load(f)
    W = load_safetensors(req["dir"] + "/model.safetensors")
    ids = req["ids"]
    out = {}
    mt = cfg["model_type"]
    if mt in ("roberta", "xlm-roberta"):
        hidden, atts, logits = roberta(cfg, W, ids)
    else:
        m = FAMILIES[mt](cfg, W)
        hidden, atts, logits = m.step(ids, 0)
        if req.get("new"):
            eos = cfg.get("eos_token_id")
            eos = [] if eos is None else (eos if isinstance(eos, list) else [eos])
            gen = list(ids)
            rows = []  # per decode step, per layer [H, 1, C]
            tok = int(np.argmax(logits[-1]))
            for s in range(req["new"]):
                gen.append(tok)
                if tok in eos or s == req["new"] - 1:
                    break
                _, att, lg = m.step([tok], len(gen) - 1)
                rows.append(att)
                tok = int(np.argmax(lg[-1]))
            out["generated"] = gen
            # One lower-triangular matrix per layer: the prompt's attention, then each step's query row.
            P, M = len(ids), len(gen) - 1
            ga = np.zeros((m.L, m.H, M, M))
            for l in range(m.L):
                ga[l, :, :P, :P] = atts[l]
                for s, r in enumerate(rows):
                    ga[l, :, P + s, : P + s + 1] = r[l][:, 0, :]
            out["generation_attentions"] = ga.tolist()
        for n in req.get("rope_seq_lens", []):
            rot = m.rot() if hasattr(m, "rot") else 0
            inv, sc = inv_freq(cfg, rot, n)
            out.setdefault("rope", []).append({"inv_freq": inv.tolist(), "scale": sc})
    out["attentions"] = [a.tolist() for a in atts]
    out["hidden"] = [h.tolist() for h in hidden]
    out["logits"] = logits.tolist()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
