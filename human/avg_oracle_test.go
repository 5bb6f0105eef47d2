package human

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/attnscope/attnscope/internal/pyoracle"
	"github.com/attnscope/attnscope/store"
)

// getavgbehavior's four CSVs equal, byte for byte, what the original's code
// (human/testdata/avgbehavior.py, pandas and numpy) writes from the same matrices:
// random follow-up matrices with zero rows, ties and values of every magnitude.
func TestAvgBehaviorMatchesPandas(t *testing.T) {
	py := pyoracle.Python(t, "pandas", "numpy")
	dir := t.TempDir()
	run, err := store.Create(filepath.Join(dir, "run"), store.Meta{Kind: Kind})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	pass := PassFollowupTokens(0.1)
	var ids []string
	for s := 0; s < 4; s++ {
		id := UniqueDataID("dev", s)
		n := 3 + rng.IntN(40)
		m := make([]float64, n*n)
		for i := range m {
			switch rng.IntN(5) {
			case 0: // zero
			case 1:
				m[i] = 1 // ties
			default:
				m[i] = rng.ExpFloat64() * []float64{1e-7, 1, 1e5}[rng.IntN(3)]
			}
		}
		for j := 0; j < n; j++ { // a zero row
			m[(n/2)*n+j] = 0
		}
		if err := os.MkdirAll(filepath.Dir(run.DerivedPath(pass, id)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeArray(run, pass, id, []store.Axis{{Name: store.AxisQuery}, {Name: store.AxisKey}}, []int{n, n}, m); err != nil {
			t.Fatal(err)
		}
		if err := run.WriteSample(&store.Sample{ID: id, Text: "x"}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	goDir := filepath.Join(dir, "go")
	pyDir := filepath.Join(dir, "py")
	os.MkdirAll(goDir, 0o755)
	os.MkdirAll(pyDir, 0o755)
	if err := avgBehavior(context.Background(), run, ids, pass, goDir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "avgbehavior.py"), filepath.Dir(run.DerivedPath(pass, ids[0])), pyDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oracle: %v\n%s", err, out)
	}
	for _, f := range []string{"df_distance_in_from_top1_token.csv", "df_base_top1_prob_based_on_distance.csv", "df_entire_followup.csv", "df_base_all_prob_based_on_distance_rebuttal.csv"} {
		g, err := os.ReadFile(filepath.Join(goDir, f))
		if err != nil {
			t.Fatal(err)
		}
		p, err := os.ReadFile(filepath.Join(pyDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, p) {
			gl, pl := bytes.Split(g, []byte("\n")), bytes.Split(p, []byte("\n"))
			for i := range min(len(gl), len(pl)) {
				if !bytes.Equal(gl[i], pl[i]) {
					t.Fatalf("%s line %d:\n go:     %s\n pandas: %s", f, i+1, gl[i], pl[i])
				}
			}
			t.Fatalf("%s: %d lines, pandas %d", f, len(gl), len(pl))
		}
	}
}
