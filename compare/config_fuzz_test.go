package compare

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseConfig: any input is accepted or rejected with an error naming the file,
// never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(testConfig))
	f.Add([]byte("comparisons: [{name: a, comparison_function: mse, human: {subfolder: x}, machine: {subfolder: y}}]"))
	f.Add([]byte("human_att_folder: h\noutput_comparison_folder: o\ncomparisons:\n  - name: a\n    comparison_function: top_k_overlap\n    comparison_kwargs: {k: 2.5}\n"))
	f.Add([]byte("machine: !!binary x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("cmp.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cmp.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, c := range cfg.Comparisons {
			if c.fn == nil || c.Human.Subfolder == "" || len(c.Machine) == 0 {
				t.Fatalf("accepted an incomplete comparison: %+v", c)
			}
		}
	})
}

// FuzzReadScores: a CSV of any content gives scores or an error, never a panic.
func FuzzReadScores(f *testing.F) {
	f.Add("comparison_name,comparison_function,input_human_filestem,input_machine_filestem,comparison_type,top_3,top_3.value,provenance.name\nx,top_3_overlap,h,m,matrix,\"[1, 0]\",1,x\n")
	f.Add("comparison_function,comparison_type,correlation,human_a,human_b\nf,vector,nope,a,b\n")
	f.Add("comparison_function,comparison_type\n")
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(t.TempDir(), "x.csv")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = ReadScores(p)
	})
}
