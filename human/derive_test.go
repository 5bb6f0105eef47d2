package human

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/store"
)

// derive runs on a human run folder: passes whose input is a human output (the
// follow-up matrix, the token weights) or the samples' metadata, chained, with the
// results checked against their definitions.
func TestDeriveOnHumanRun(t *testing.T) {
	out, c, _ := makeStudy(t)
	run, err := store.Open(filepath.Join(out, "run"))
	if err != nil {
		t.Fatal(err)
	}
	fu := PassFollowupTokens(c.decays()[0])
	tw := PassTokenWeights(c.Tokenization.ModelNames[0])
	cfgText := fmt.Sprintf(`passes:
  - {name: followup_sym, input: %[1]s, function: make_symmetric, kwargs: {strategy: mean}}
  - {name: followup_to_lines, input: %[1]s, function: attention_to_lines}
  - {name: sym_lines, input: followup_sym, function: attention_to_lines, kwargs: {rows: true}}
  - {name: mean_of_followers, input: %[1]s, function: compute_mean_of_followers}
  - {name: token_weight_chars, input: %[2]s, function: attention_to_chars, kwargs: {distribution: equal_share}}
  - {name: uniform, function: generate_uniform_attention_from_metadata}
`, fu, tw)
	cfg, err := derive.ParseConfig("human-derive.yaml", []byte(cfgText), derive.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	smry, err := derive.Derive(context.Background(), run, cfg, derive.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := run.Samples()
	if smry.Computed != 6*len(ids) {
		t.Fatalf("summary %+v for %d samples", smry, len(ids))
	}
	wantAxes := map[string]string{"followup_sym": "[query, key]", "followup_to_lines": "[query, line]", "sym_lines": "[line, line]",
		"mean_of_followers": "[key]", "token_weight_chars": "[char]", "uniform": "[query, key]"}
	for pass, want := range wantAxes {
		ps, err := run.ReadPassSettings(pass)
		if err != nil {
			t.Fatal(err)
		}
		if got := store.AxesString(ps.Axes); got != want {
			t.Fatalf("pass %s: axes %s, want %s", pass, got, want)
		}
	}
	for _, id := range ids {
		s, _ := run.Sample(id)
		n := len(s.Tokens)
		m, _ := run.Derived(fu, id)
		sym, _ := run.Derived("followup_sym", id)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if want := (m.Data[i*n+j] + m.Data[j*n+i]) / 2; math.Abs(sym.Data[i*n+j]-want) > 1e-15*math.Max(1, want) {
					t.Fatalf("sample %s: symmetric [%d,%d] = %v, want %v", id, i, j, sym.Data[i*n+j], want)
				}
			}
		}
		// Summing the columns per line keeps every row's total.
		tl, _ := run.Derived("followup_to_lines", id)
		if tl.Shape[0] != n {
			t.Fatalf("sample %s: token × line shape %v", id, tl.Shape)
		}
		k := tl.Shape[1]
		for i := 0; i < n; i++ {
			if a, b := sum(tl.Data[i*k:(i+1)*k]), sum(m.Data[i*n:(i+1)*n]); math.Abs(a-b) > 1e-12*math.Max(1, b) {
				t.Fatalf("sample %s: row %d sums to %v by line, %v by token", id, i, a, b)
			}
		}
		ll, _ := run.Derived("sym_lines", id)
		if math.Abs(sum(ll.Data)-sum(sym.Data)) > 1e-9*sum(sym.Data) {
			t.Fatalf("sample %s: line × line total %v, token × token %v", id, sum(ll.Data), sum(sym.Data))
		}
		// equal_share spreads each token's weight over its characters: totals agree.
		tok, _ := run.Derived(tw, id)
		ch, _ := run.Derived("token_weight_chars", id)
		if len(ch.Data) != len([]rune(s.Text)) || math.Abs(sum(ch.Data)-sum(tok.Data)) > 1e-9*sum(tok.Data) {
			t.Fatalf("sample %s: %d character weights totalling %v for %d characters and token total %v", id, len(ch.Data), sum(ch.Data), len([]rune(s.Text)), sum(tok.Data))
		}
		u, _ := run.Derived("uniform", id)
		if u.Shape[0] != n || u.Shape[1] != n {
			t.Fatalf("sample %s: uniform baseline shape %v for %d tokens", id, u.Shape, n)
		}
	}
	// An input pass the run lacks: one sentence naming the config line and the
	// run's passes.
	bad, err := derive.ParseConfig("bad.yaml", []byte("passes:\n  - {name: x, input: followup_tokens.decay_0.2, function: make_symmetric}\n"), derive.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_, err = derive.Derive(context.Background(), run, bad, derive.Options{})
	if err == nil || !strings.Contains(err.Error(), `bad.yaml:2: pass "x": input "followup_tokens.decay_0.2": run `) || !strings.Contains(err.Error(), fu) {
		t.Fatalf("err = %v", err)
	}
}
