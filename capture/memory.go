package capture

import (
	"fmt"
	"os"

	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
)

// QKBackend is the Go backend configuration of --store qk captures: sequential ops
// in creation order (see Run).
const QKBackend = model.DefaultBackend + ",creation_order"

// Memory is an estimate of the memory a capture needs, in bytes.
type Memory struct {
	Tokens                                int
	Weights, Activations, Attention, Disk int64
	QK                                    bool
}

// Total is the estimated peak.
func (m Memory) Total() int64 { return m.Weights + m.Activations + m.Attention }

func (m Memory) String() string {
	how := "materialised attention"
	if m.QK {
		how = "blockwise attention, --store qk"
	}
	return fmt.Sprintf("about %s of memory needed for %d tokens with %s (weights %s, activations %s, attention %s); about %s written per sample",
		gib(m.Total()), m.Tokens, how, gib(m.Weights), gib(m.Activations), gib(m.Attention), gib(m.Disk))
}

func gib(b int64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// EstimateMemory estimates the memory of capturing inputs of up to n tokens,
// batch at a time: the float32 weights; per layer the activations the block
// graph holds (residual stream, queries/keys/values, MLP); the attention — with
// materialised attention the [heads, T, T] mask, scores and pattern plus the
// writer's two layer copies, with --store qk a few [heads, QueryBlock,
// KeyBlock] tiles; and the bytes written per sample.
func EstimateMemory(cfg *arch.Config, a arch.Architecture, n, batch int, opts Options) Memory {
	const f32 = 4
	var weights int64
	count := func(ps []arch.Param) {
		for _, p := range ps {
			size := int64(f32)
			for _, d := range p.Shape {
				size *= int64(d)
			}
			weights += size
		}
	}
	count(a.EmbedParams())
	for l := range cfg.Layers {
		count(a.LayerParams(l))
	}
	count(a.FinalParams())
	count(a.HeadParams())
	T := int64(n) // the bucketed length is at most 1.5× n; n keeps the estimate plain
	B, H, KV, hd := int64(batch), int64(cfg.Heads), int64(a.KVHeads()), int64(a.HeadDim())
	width, ffn := int64(cfg.Hidden), int64(max(cfg.Intermediate, cfg.Hidden))
	act := B * T * f32 * (6*width + 3*ffn + 2*(H+2*KV)*hd)
	elem := int64(f32)
	if opts.FP16 {
		elem = 2
	}
	m := Memory{Tokens: n, Weights: weights, Activations: act, QK: opts.QK}
	layers := int64(cfg.Layers)
	if opts.QK {
		tile := B * H * min(T, model.QueryBlock) * min(T, model.KeyBlock)
		m.Attention = 4*tile*f32 + 2*(H+2*KV)*T*hd*f32
		perLayer := (H+KV)*T*hd*elem + H*T*f32
		if opts.QKV {
			perLayer += KV * T * hd * elem
		}
		m.Disk = layers * perLayer
	} else {
		m.Attention = B*H*T*T*(1+3*f32) + 3*H*T*T*f32
		m.Disk = layers * H * T * T * elem
		if opts.QKV {
			m.Disk += layers * 3 * H * T * hd * elem
		}
	}
	if opts.Hidden {
		m.Disk += (layers + 2) * T * width * elem
	}
	return m
}

func info(opts Options, msg string) {
	if opts.Info != nil {
		opts.Info(msg)
		return
	}
	fmt.Fprintln(os.Stderr, msg)
}

func storeMode(qk bool) string {
	if qk {
		return "qk"
	}
	return ""
}

func storeName(s string) string {
	if s == "" {
		return "full"
	}
	return s
}

func attentionImplementation(mask string, qk bool) string {
	if qk {
		return "blockwise: softmax(Q·Kᵀ/√head_dim + " + mask + ") over key blocks with a running max and sum; Q, K and each row's log-sum-exp stored, weights recomputed on demand"
	}
	return "eager: softmax(Q·Kᵀ/√head_dim + " + mask + "), every weight materialised"
}
