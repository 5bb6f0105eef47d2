"""PyTorch side of the Jacobian benchmark (jacobianbench): BERT encoder from a
safetensors checkpoint in plain torch (no transformers), eval mode, and for each
example the singular values of every J_w = dY[p,:]/dE[w,:] as BERT-non-text's
dynamical_isometry.py computes them: one forward with E requiring grad, then one
backward per output coordinate (retain_graph), then torch.linalg.svdvals of
every block.

usage: python3 torch_jacobian.py MODEL_DIR inputs.json [out.npy] [--vectorize]
"""
import json, math, resource, struct, sys, time

import numpy as np
import torch


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", v["dtype"]
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"]).copy())
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    vectorize = "--vectorize" in sys.argv
    model_dir, inputs = args[0], args[1]
    out = args[2] if len(args) > 2 else None
    cfg = json.load(open(model_dir + "/config.json"))
    W = load_safetensors(model_dir + "/model.safetensors")
    L, H, d = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"]
    eps = cfg.get("layer_norm_eps", 1e-12)
    hd = d // H
    ln = torch.nn.functional.layer_norm
    lin = torch.nn.functional.linear

    def embed(ids):
        n = len(ids)
        x = W["bert.embeddings.word_embeddings.weight"][ids] + W["bert.embeddings.position_embeddings.weight"][:n] \
            + W["bert.embeddings.token_type_embeddings.weight"][0]
        return ln(x, (d,), W["bert.embeddings.LayerNorm.weight"], W["bert.embeddings.LayerNorm.bias"], eps)

    def encode(x):
        n = x.shape[0]
        for l in range(L):
            p = "bert.encoder.layer.%d." % l
            q = lin(x, W[p + "attention.self.query.weight"], W[p + "attention.self.query.bias"]).view(n, H, hd).transpose(0, 1)
            k = lin(x, W[p + "attention.self.key.weight"], W[p + "attention.self.key.bias"]).view(n, H, hd).transpose(0, 1)
            v = lin(x, W[p + "attention.self.value.weight"], W[p + "attention.self.value.bias"]).view(n, H, hd).transpose(0, 1)
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), -1) @ v
            a = a.transpose(0, 1).reshape(n, d)
            x = ln(x + lin(a, W[p + "attention.output.dense.weight"], W[p + "attention.output.dense.bias"]), (d,),
                   W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
            h = torch.nn.functional.gelu(lin(x, W[p + "intermediate.dense.weight"], W[p + "intermediate.dense.bias"]))
            x = ln(x + lin(h, W[p + "output.dense.weight"], W[p + "output.dense.bias"]), (d,),
                   W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
        return x

    x = json.load(open(inputs))
    res = []
    t0, c0 = time.time(), time.process_time()
    for ids, p in zip(x["ids"], x["positions"]):
        ids = torch.tensor(ids)
        with torch.no_grad():
            e0 = embed(ids)
        if vectorize:
            J = torch.autograd.functional.jacobian(lambda e: encode(e)[p], e0, vectorize=True)  # [d, n, d]
        else:
            e = e0.clone().requires_grad_(True)
            y = encode(e)[p]
            rows = [torch.autograd.grad(y[a], e, retain_graph=True)[0] for a in range(d)]
            J = torch.stack(rows)  # [d, n, d]
        res.append(torch.linalg.svdvals(J.permute(1, 0, 2)).detach())  # n blocks J_w[a, b]
    wall, cpu = time.time() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print("torch%s %s (%d threads): %d examples x %d tokens, width %d: wall %.1f s, cpu %.1f s, peak RSS %d MiB"
          % (" vectorized" if vectorize else " loop", torch.__version__, torch.get_num_threads(), len(res), len(x["ids"][0]), d, wall, cpu, rss))
    if out:
        np.save(out, torch.stack(res).double().numpy())


if __name__ == "__main__":
    main()
