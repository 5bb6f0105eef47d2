package model

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
)

// WriteRandomWeights writes dir/model.safetensors with random weights of the
// shapes the architecture of dir/config.json needs (tests and benchmarks at a
// published config's shapes): every value 0.1·N(0, 1), plus 1 for the weights
// of norms that multiply by w (Gemma's, which multiply by 1 + w, stay near 0).
func WriteRandomWeights(dir string, seed uint64) error {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return err
	}
	a, err := Architecture(cfg)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	var infos []checkpoint.TensorInfo
	var datas [][]float32
	seen := map[string]bool{}
	ps := append(a.EmbedParams(), a.FinalParams()...)
	for l := range cfg.Layers {
		ps = append(ps, a.LayerParams(l)...)
	}
	ps = append(ps, a.HeadParams()...)
	for _, p := range ps {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		data := make([]float32, n)
		name := strings.ToLower(p.Name)
		one := len(p.Shape) == 1 && strings.HasSuffix(name, "weight") && (strings.Contains(name, "norm") || strings.Contains(name, "ln_")) &&
			!strings.HasPrefix(cfg.ModelType, "gemma")
		for j := range data {
			v := 0.1 * rng.NormFloat64()
			if one {
				v++
			}
			data[j] = float32(v)
		}
		infos = append(infos, checkpoint.TensorInfo{Name: p.Name, DType: checkpoint.F32, Shape: p.Shape})
		datas = append(datas, data)
	}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, "model.safetensors"), infos, datas, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("write random weights: %w", err)
	}
	return nil
}
