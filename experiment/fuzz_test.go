package experiment

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds experiment files to Render, Parse and DerivePasses: any input gives
// a config or an error naming the file, never a panic.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(shippedPath()); err == nil {
		f.Add(string(b))
	}
	f.Add("input_data_folder: p\noutput_data_folder: o\nmodels: [m]\ngeneration: {number_of_tokens: -1}\nanalysis_passes:\n  - {name: a, input_folder: att_tensor, function_name: compute_naive_max_aggregation}\n")
	f.Add("models: [{{x}}]\n")
	f.Add("attention: {strategy_reduce_head: max, strategy_normalize_tokens: more_weight_to_recent}\n")
	reg := Registry()
	f.Fuzz(func(t *testing.T, src string) {
		data, err := Render("exp.yaml", []byte(src), shippedVars)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "exp.yaml:") {
				t.Fatalf("render error %q does not name the file", err)
			}
			return
		}
		c, err := Parse("exp.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "exp.yaml") {
				t.Fatalf("parse error %q does not name the file", err)
			}
			return
		}
		if _, err := c.DerivePasses(reg); err != nil && !strings.HasPrefix(err.Error(), "exp.yaml") {
			t.Fatalf("passes error %q does not name the file", err)
		}
	})
}

func writeString(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
