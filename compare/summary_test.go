package compare

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/stats"
)

func TestReadScoresAndSummarize(t *testing.T) {
	dir, cfg := setup(t, false)
	if _, err := Run(context.Background(), cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	var tables []*Scores
	for _, n := range []string{"top3_followup", "top3_naive", "top3_human"} {
		s, err := ReadScores(filepath.Join(dir, "out", n+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, s)
	}
	f := tables[0]
	if f.Column != "top_3.value" || f.Comparison != "top3" || len(f.BySession) != 3 || len(f.Values) != 6*12 || f.HumanPairs {
		t.Fatalf("followup scores: column %s comparison %s sessions %d values %d", f.Column, f.Comparison, len(f.BySession), len(f.Values))
	}
	if !tables[2].HumanPairs || len(tables[2].BySession) != 2 {
		t.Fatalf("human pairs: %+v", tables[2].BySession)
	}
	// Session h1's mean is the mean of its 2 tries × 12 rows.
	var s float64
	for _, v := range f.Values[:24] {
		s += v
	}
	if math.Abs(f.BySession["h1"]-s/24) > 1e-12 {
		t.Fatalf("h1 mean %v, want %v", f.BySession["h1"], s/24)
	}
	sums, err := Summarize(tables, func(t *Scores) bool { return t.HumanPairs || strings.HasSuffix(t.Name, "_naive") })
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || len(sums[0].Estimates) != 3 || len(sums[0].Contrasts) != 2 {
		t.Fatalf("%+v", sums)
	}
	e := sums[0].Estimates[0]
	if !(e.Lo <= e.Mean && e.Mean <= e.Hi) || e.Baseline || e.Sessions != 3 {
		t.Fatalf("estimate %+v", e)
	}
	c := sums[0].Contrasts[0] // followup vs naive on the 3 sessions
	x := []float64{f.BySession["h1"], f.BySession["h2"], f.BySession["h3"]}
	y := []float64{tables[1].BySession["h1"], tables[1].BySession["h2"], tables[1].BySession["h3"]}
	r, err := stats.Wilcoxon(x, y)
	if err != nil || c.Sessions != 3 || c.P != r.P || c.Baseline != "top3_naive" {
		t.Fatalf("contrast %+v, Wilcoxon %+v %v", c, r, err)
	}
	ps := []float64{sums[0].Contrasts[0].P, sums[0].Contrasts[1].P}
	holm, _ := stats.Holm(ps)
	if sums[0].Contrasts[0].PHolm != holm[0] || sums[0].Contrasts[1].PHolm != holm[1] {
		t.Fatalf("Holm: %+v, want %v", sums[0].Contrasts, holm)
	}
	if _, err := ReadScores(filepath.Join(dir, "cmp.yaml")); err == nil {
		t.Fatal("a YAML file read as scores")
	}
}
