package arch

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// RopeScaling is a config's rope_parameters (transformers 5) or rope_scaling
// (older files): the RoPE scaling type and its parameters, as transformers'
// modeling_rope_utils.py reads them.
type RopeScaling struct {
	Type  string // "", "default", "linear", "dynamic", "yarn", "longrope", "llama3"
	Field string // the key it was read from ("rope_parameters" or "rope_scaling"), for errors

	Factor                        float64
	OriginalMax                   int // original_max_position_embeddings inside the object
	TopOriginalMax                int // original_max_position_embeddings at the top level (Phi-3), which wins
	LowFreqFactor, HighFreqFactor float64
	AttentionFactor               float64 // 0: derived
	BetaFast, BetaSlow            float64 // 0: 32 and 1
	Mscale, MscaleAllDim          float64
	Truncate                      bool // yarn: round the correction range (default true)
	ShortFactor, LongFactor       []float64
}

// RopeTypes are the supported rope_type values.
var RopeTypes = []string{"default", "linear", "dynamic", "yarn", "longrope", "llama3"}

func (r *RopeScaling) field(key string) string {
	f := r.Field
	if f == "" {
		f = "rope_parameters"
	}
	return f + "." + key
}

// check validates the parameters each type needs (rotDim = head_dim ×
// partial_rotary_factor), naming the config field.
func (r *RopeScaling) check(c *Config) error {
	if !slices.Contains(RopeTypes, r.Type) && r.Type != "" {
		return fmt.Errorf("field %s: %q is not supported (expected one of %s)", r.field("rope_type"), r.Type, strings.Join(RopeTypes, ", "))
	}
	positive := func(key string, v float64) error {
		if !(v > 0) {
			return fmt.Errorf("field %s is missing or not positive (rope_type %s needs it)", r.field(key), r.Type)
		}
		return nil
	}
	switch r.Type {
	case "linear", "dynamic", "yarn":
		if err := positive("factor", r.Factor); err != nil {
			return err
		}
		if r.Type == "dynamic" && c.MaxPositions <= 0 {
			return fmt.Errorf("field %s is missing: rope_type dynamic needs it", c.Keys.MaxPositions)
		}
		if r.Type == "yarn" && r.origMax(c) <= 0 {
			return fmt.Errorf("field %s is missing: rope_type yarn needs it", c.Keys.MaxPositions)
		}
	case "llama3":
		for _, p := range []struct {
			k string
			v float64
		}{{"factor", r.Factor}, {"low_freq_factor", r.LowFreqFactor}, {"high_freq_factor", r.HighFreqFactor}, {"original_max_position_embeddings", float64(r.origMax(c))}} {
			if err := positive(p.k, p.v); err != nil {
				return err
			}
		}
		if r.HighFreqFactor <= r.LowFreqFactor {
			return fmt.Errorf("field %s: %g is not above low_freq_factor %g", r.field("high_freq_factor"), r.HighFreqFactor, r.LowFreqFactor)
		}
	case "longrope":
		half := int(float64(c.HeadDim)*c.RotaryFraction) / 2
		for _, p := range []struct {
			k string
			v []float64
		}{{"short_factor", r.ShortFactor}, {"long_factor", r.LongFactor}} {
			if len(p.v) != half {
				return fmt.Errorf("field %s has %d values, expected %d (half the rotary dimension)", r.field(p.k), len(p.v), half)
			}
		}
		if r.origMax(c) <= 0 || c.MaxPositions <= 0 && r.Factor <= 0 {
			return fmt.Errorf("field %s is missing: rope_type longrope needs it", c.Keys.MaxPositions)
		}
	}
	return nil
}

// origMax is the pretraining context of yarn, longrope and llama3: a top-level
// original_max_position_embeddings (Phi-3's), else the one inside the RoPE
// object, else max_position_embeddings (transformers' standardize_rope_params).
func (r *RopeScaling) origMax(c *Config) int {
	switch {
	case r.TopOriginalMax > 0:
		return r.TopOriginalMax
	case r.OriginalMax > 0:
		return r.OriginalMax
	}
	return c.MaxPositions
}

// pow32 is base ** e for a float32 exponent, rounded to float32 (torch's
// float32 pow of a Python float base).
func pow32(base float64, e float32) float32 { return float32(math.Pow(base, float64(e))) }

// InvFreq returns the RoPE inverse frequencies [rotDim/2] and the factor
// applied to cos and sin ("attention scaling") for a forward pass whose
// largest position is seqLen−1, in float32 as transformers'
// modeling_rope_utils.py computes them (transformers 5 as of 2026, after
// standardize_rope_params: original_max_position_embeddings from the top level,
// else the RoPE object, else max_position_embeddings; yarn's factor as given): default 1/θ^(2i/d); linear divides by factor;
// dynamic (NTK) raises θ to θ·(factor·seqLen/max − (factor−1))^(d/(d−2)) once
// seqLen exceeds max_position_embeddings; yarn blends interpolated and
// extrapolated frequencies over a linear ramp between the beta_fast/beta_slow
// correction dimensions and scales cos/sin by 0.1·ln(factor)+1 (Peng et al.
// 2023); longrope divides by short_factor, or long_factor when seqLen exceeds
// the original context, and scales by √(1+ln(factor)/ln(original)) (Ding et
// al. 2024); llama3 divides low frequencies by factor and interpolates the
// middle band (Meta's Llama 3.1). dynamic and longrope are evaluated per
// forward pass, as transformers' dynamic_rope_update does on the first pass
// of a freshly loaded model (it then keeps the largest length seen).
func InvFreq(c *Config, rotDim, seqLen int) (inv []float32, scale float32) {
	r := &c.Rope
	half := rotDim / 2
	theta := c.RopeTheta
	scale = 1
	if r.Type == "dynamic" {
		maxPos := c.MaxPositions
		sl := max(seqLen, maxPos)
		d := float64(rotDim)
		theta *= math.Pow(r.Factor*float64(sl)/float64(maxPos)-(r.Factor-1), d/(d-2))
	}
	exps := make([]float32, half)
	for i := range half {
		exps[i] = float32(2*i) / float32(rotDim)
	}
	inv = make([]float32, half)
	for i := range half {
		inv[i] = 1 / pow32(theta, exps[i])
	}
	switch r.Type {
	case "linear":
		for i := range inv {
			inv[i] /= float32(r.Factor)
		}
	case "yarn":
		inv, scale = yarn(c, rotDim, exps)
	case "longrope":
		orig := r.origMax(c)
		factor := r.Factor
		if factor == 0 {
			factor = float64(c.MaxPositions) / float64(orig)
		}
		att := r.AttentionFactor
		if att == 0 {
			att = 1
			if factor > 1 {
				att = math.Sqrt(1 + math.Log(factor)/math.Log(float64(orig)))
			}
		}
		ext := r.ShortFactor
		if seqLen > orig {
			ext = r.LongFactor
		}
		for i := range inv {
			inv[i] = 1 / (float32(ext[i]) * pow32(theta, exps[i]))
		}
		scale = float32(att)
	case "llama3":
		factor := float32(r.Factor)
		old := float32(r.origMax(c))
		lowWave := old / float32(r.LowFreqFactor)
		highWave := old / float32(r.HighFreqFactor)
		for i, f := range inv {
			wave := float32(2*math.Pi) / f
			g := f
			if wave > lowWave {
				g = f / factor
			}
			if !(wave < highWave) && !(wave > lowWave) {
				smooth := (old/wave - float32(r.LowFreqFactor)) / float32(r.HighFreqFactor-r.LowFreqFactor)
				g = (1-smooth)*g/factor + smooth*g
			}
			inv[i] = g
		}
	}
	return inv, scale
}

// yarn computes YaRN's inverse frequencies and attention factor
// (transformers' _compute_yarn_parameters).
func yarn(c *Config, rotDim int, exps []float32) ([]float32, float32) {
	r := &c.Rope
	base, dim := c.RopeTheta, float64(rotDim)
	factor, orig := r.Factor, r.origMax(c)
	mscale := func(s, m float64) float64 {
		if s <= 1 {
			return 1
		}
		return 0.1*m*math.Log(s) + 1
	}
	att := r.AttentionFactor
	if att == 0 {
		if r.Mscale != 0 && r.MscaleAllDim != 0 {
			att = mscale(factor, r.Mscale) / mscale(factor, r.MscaleAllDim)
		} else {
			att = mscale(factor, 1)
		}
	}
	betaFast, betaSlow := r.BetaFast, r.BetaSlow
	if betaFast == 0 {
		betaFast = 32
	}
	if betaSlow == 0 {
		betaSlow = 1
	}
	corr := func(rot float64) float64 {
		return dim * math.Log(float64(orig)/(rot*2*math.Pi)) / (2 * math.Log(base))
	}
	low, high := corr(betaFast), corr(betaSlow)
	if r.Truncate {
		low, high = math.Floor(low), math.Ceil(high)
	}
	low, high = max(low, 0), min(high, dim-1)
	if low == high {
		high += 0.001
	}
	inv := make([]float32, len(exps))
	for i, e := range exps {
		pf := pow32(base, e)
		extra := 1 / pf
		inter := 1 / (float32(factor) * pf)
		ramp := (float32(i) - float32(low)) / float32(high-low)
		ramp = min(max(ramp, 0), 1)
		ef := 1 - ramp
		inv[i] = inter*(1-ef) + extra*ef
	}
	return inv, float32(att)
}

// RopeTables returns cos and sin [len(positions), rotDim] for c's RoPE
// (InvFreq with seqLen, the largest position + 1 of the pass), computed like
// transformers' rotary embedding in float32: angle = pos·inv_freq, tables =
// cat(angle, angle), cos and sin times the attention scaling.
func (c *Config) RopeTables(positions []int, rotDim, seqLen int) (cos, sin []float32) {
	inv, scale := InvFreq(c, rotDim, seqLen)
	return ropeTables(positions, inv, scale)
}

func ropeTables(positions []int, inv []float32, scale float32) (cos, sin []float32) {
	half := len(inv)
	rotDim := 2 * half
	cos = make([]float32, len(positions)*rotDim)
	sin = make([]float32, len(positions)*rotDim)
	for r, p := range positions {
		for i := range half {
			a := float64(float32(p) * inv[i])
			c, s := float32(math.Cos(a)), float32(math.Sin(a))
			if scale != 1 {
				c, s = c*scale, s*scale
			}
			cos[r*rotDim+i], cos[r*rotDim+half+i] = c, c
			sin[r*rotDim+i], sin[r*rotDim+half+i] = s, s
		}
	}
	return cos, sin
}
