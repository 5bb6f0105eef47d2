package compare

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/procstat"
	"github.com/attnscope/attnscope/store"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkStudyComparison runs the comparison of the study's size: 92 human
// sessions on 45 source files (two to three sessions per file) against 45 machine
// samples (one per file) and 20 machine artefacts (derived passes), token × token
// matrices of N ≈ 500, with the paper's top-3 pipeline (keep_only_tokens_seen_by_model,
// normalize_both_matrices_by_line, top_3_overlap exploded into rows) plus the
// human–human pairs. Sizes: COMPARE_BENCH_SESSIONS (92), COMPARE_BENCH_FILES (45),
// COMPARE_BENCH_ARTEFACTS (20), COMPARE_BENCH_N (500). The .npy files are links to
// eight distinct matrices, so the data set takes 16 MB of disk; every pair still
// reads and parses both files. It reports the peak resident set (VmHWM).
func BenchmarkStudyComparison(b *testing.B) {
	sessions := envInt("COMPARE_BENCH_SESSIONS", 92)
	files := envInt("COMPARE_BENCH_FILES", 45)
	artefacts := envInt("COMPARE_BENCH_ARTEFACTS", 20)
	n := envInt("COMPARE_BENCH_N", 500)
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 1))
	var pool []string
	for k := range 8 {
		p := filepath.Join(dir, fmt.Sprintf("m%d.npy", k))
		if err := checkpoint.WriteNpyFile(p, []int{n, n}, randomMatrix(rng, n).Data); err != nil {
			b.Fatal(err)
		}
		pool = append(pool, p)
	}
	text, toks, offs := sourceText(n)
	mk := func(name string, items []item, passes []string) {
		r, err := store.Create(filepath.Join(dir, name), store.Meta{Kind: "import"})
		if err != nil {
			b.Fatal(err)
		}
		for i, it := range items {
			for j, pass := range passes {
				p := r.DerivedPath(pass, it.id)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.Symlink(pool[(i+j)%len(pool)], p); err != nil {
					b.Fatal(err)
				}
			}
			s := &store.Sample{ID: it.id, Text: text, PromptText: text, Tokens: toks, Offsets: offs, PromptLen: n, Source: it.source,
				Extra: map[string]any{"user_name": it.user, "task_number": it.task}}
			if err := r.WriteSample(s); err != nil {
				b.Fatal(err)
			}
		}
	}
	var humans, machines []item
	for s := range sessions {
		humans = append(humans, item{id: fmt.Sprintf("s%03d", s), source: fmt.Sprintf("f%02d.py", s%files), user: fmt.Sprintf("u%d", s/4), task: strconv.Itoa(s % 4)})
	}
	for f := range files {
		machines = append(machines, item{id: fmt.Sprintf("f%02d.py_0", f), source: fmt.Sprintf("f%02d.py", f)})
	}
	var passes, sections []string
	for a := range artefacts {
		passes = append(passes, fmt.Sprintf("artefact%02d", a))
		sections = append(sections, fmt.Sprintf("      - {subfolder: artefact%02d, suffix: _a%02d}", a, a))
	}
	mk("human", humans, []string{"followup"})
	mk("machine", machines, passes)
	cfg := `human_att_folder: human
machine_att_folder: machine
output_comparison_folder: out
comparisons:
  - name: tl_top3
    comparison_function: top_3_overlap
    comparison_output_subcolumns: [value, token_index]
    transformations:
      - name: keep_only_tokens_seen_by_model
      - name: normalize_both_matrices_by_line
    human: {subfolder: followup, suffix: _human}
    machine:
` + strings.Join(sections, "\n") + "\n"
	path := filepath.Join(dir, "cmp.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	b.ResetTimer()
	var sum *Summary
	for range b.N {
		if sum, err = Run(context.Background(), c, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(sum.Pairs), "pairs")
	b.ReportMetric(float64(sum.Rows), "rows")
	if rss := procstat.PeakRSS(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}
