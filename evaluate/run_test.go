package evaluate

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/tasks"
)

type charTok struct{}

func (charTok) Encode(s string, _ bool) []int {
	var out []int
	for _, r := range s {
		out = append(out, int(r))
	}
	return out
}
func (charTok) BOS() int { return 1 }
func (charTok) EOS() int { return 2 }

// oracleModel predicts the next token right except at the answer's first
// scored position of odd samples, and attends uniformly to the label-1 cells of
// each row (so the rollout share on reference tokens is known: with one layer,
// Â = ½A + ½I).
type oracleModel struct {
	samples []*tasks.Sample
	next    int
}

func (m *oracleModel) Forward(_ context.Context, ids [][]int, _ bool) ([][]int, [][][][]float32, error) {
	preds := make([][]int, len(ids))
	attn := make([][][][]float32, len(ids))
	for b := range ids {
		s := m.samples[m.next]
		idx := m.next
		m.next++
		n := len(ids[b])
		preds[b] = make([]int, n)
		first := true
		for j := range preds[b] {
			if j < len(s.TargetIDs) && s.TargetIDs[j] != -100 {
				preds[b][j] = s.TargetIDs[j]
				if first && idx%2 == 1 {
					preds[b][j] = -1
				}
				first = false
			}
		}
		a := make([]float32, n*n)
		for r := 0; r < n; r++ {
			var ones []int
			if r < s.Labels.N {
				for c := 0; c < s.Labels.N; c++ {
					if s.Labels.At(r, c) == 1 {
						ones = append(ones, c)
					}
				}
			}
			if len(ones) == 0 {
				a[r*n] = 1
				continue
			}
			for _, c := range ones {
				a[r*n+c] = 1 / float32(len(ones))
			}
		}
		attn[b] = [][][]float32{{a}}
	}
	return preds, attn, nil
}

func TestDatasetAndReport(t *testing.T) {
	g, err := tasks.NewLongAddition(tasks.Common{Seed: 3, Tokenizer: charTok{}}, tasks.Range{Lo: 1, Hi: 3}, tasks.Range{Lo: 2, Hi: 2}, true)
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := tasks.Take(g, 6)
	m := &oracleModel{samples: ss}
	r, err := Dataset(context.Background(), m, "dataset1", ss, Options{BatchSize: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 6 || r.Accuracy != 50 {
		t.Fatalf("n %d accuracy %v, want 6 and 50%%", r.N, r.Accuracy)
	}
	if *r.Piecewise.MeanErrorPosition != 0 {
		t.Fatalf("errors are at answer position 0, got mean %v", *r.Piecewise.MeanErrorPosition)
	}
	// Each answer row puts ½ of its rollout on its references (the other ½ is the
	// residual on itself, a 0-labelled cell; the EOS row has no reference and gets 0).
	for _, s := range r.Samples {
		for i, p := range s.RefShare {
			want := 0.5
			if i == len(s.RefShare)-1 {
				want = 0
			}
			if !near(p, want) {
				t.Fatalf("sample %d row %d: share %v, want %v", s.Index, i, p, want)
			}
		}
	}
	// DropLast reproduces the original DataLoader: 6 samples in batches of 4 → 4.
	m.next = 0
	r2, err := Dataset(context.Background(), m, "d", ss, Options{BatchSize: 4, DropLast: true}, nil)
	if err != nil || r2.N != 4 {
		t.Fatalf("drop_last: %d samples, %v", r2.N, err)
	}
	rep := &Report{Name: "x", ID: r, OOD: r2}
	rep.Compare()
	dir := t.TempDir()
	if err := rep.WriteJSON(filepath.Join(dir, "results.json")); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteCSV(dir); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	if err := json.Unmarshal(b, &back); err != nil || back["dataset1"] == nil {
		t.Fatalf("results.json: %v", err)
	}
	f, _ := os.Open(filepath.Join(dir, "samples.csv"))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 1+6+4 {
		t.Fatalf("samples.csv: %d rows, %v", len(rows), err)
	}
}
