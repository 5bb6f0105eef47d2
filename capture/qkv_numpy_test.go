package capture

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/pyoracle"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
)

// qkvOracle is an independent reader and recomputation in NumPy: it parses
// qkv.safetensors and attention.safetensors itself (8-byte header length,
// JSON header, little-endian F32 data), recomputes every layer's pattern as
// softmax(q·kᵀ/√head_dim + mask) in float64 (causal mask for decoders) and
// prints the largest difference from the stored pattern.
const qkvOracle = `import json, struct, sys, numpy as np
def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out
sample, causal = sys.argv[1], sys.argv[2] == "causal"
qkv = load(sample + "/qkv.safetensors")
att = load(sample + "/attention.safetensors")
worst = 0.0
for l in range(len(att)):
    q, k = qkv[f"blocks.{l}.attn.hook_q"], qkv[f"blocks.{l}.attn.hook_k"]
    s = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    if causal:
        n = s.shape[-1]
        s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    p = s / s.sum(-1, keepdims=True)
    worst = max(worst, float(np.abs(p - att[f"blocks.{l}.attn.pattern"]).max()))
print(worst)
`

// TestQKVNumpyOracle: NumPy (Debian python3-numpy) recomputes the attention of
// captured runs from their stored queries and keys (GQA and RoPE in
// tiny-llama, partial rotary in tiny-gpt_neox, no mask in tiny-bert) and gets
// the stored pattern back within 1e-5. Skipped without NumPy, except under CI.
func TestQKVNumpyOracle(t *testing.T) {
	py := pyoracle.Python(t, "numpy")
	for _, name := range []string{"tiny-llama", "tiny-gpt_neox", "tiny-bert", "code-gpt2-mini"} {
		t.Run(name, func(t *testing.T) {
			dir := refdata.Path(t, "models", name)
			cases := loadCases(t, dir)
			out := filepath.Join(t.TempDir(), "run")
			if _, err := Run(context.Background(), out, []Input{{ID: "case0", Text: cases[0].Text}}, Options{ModelDir: dir, QKV: true}); err != nil {
				t.Fatal(err)
			}
			cfg, err := model.ReadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			a, err := model.Architecture(cfg)
			if err != nil {
				t.Fatal(err)
			}
			mask := "none"
			if a.Causal() {
				mask = "causal"
			}
			res, err := exec.Command(py, "-c", qkvOracle, filepath.Join(out, "samples", "case0"), mask).CombinedOutput()
			if err != nil {
				t.Fatalf("numpy: %v\n%s", err, res)
			}
			worst, err := strconv.ParseFloat(strings.TrimSpace(string(res)), 64)
			if err != nil {
				t.Fatalf("numpy printed %q", res)
			}
			if worst > 1e-5 {
				t.Errorf("NumPy's softmax(QKᵀ/√d + mask) from the stored Q, K differs from the stored pattern by %s", fmt.Sprint(worst))
			}
		})
	}
}
