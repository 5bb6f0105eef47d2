package human

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

// makeStudy generates a small study with the code-gpt2-mini tokenizer and runs every
// step on it.
func makeStudy(t *testing.T) (string, *Config, map[string][]float64) {
	t.Helper()
	q, files := sensemakingFiles(t, 3)
	tok := refdata.Path(t, "models", "code-gpt2-mini")
	out := t.TempDir()
	truth, err := Generate(out, GenerateOptions{Questions: q, Files: files, Participants: 2, TasksPerParticipant: 2, Seed: 11, ModelTokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(filepath.Join(out, "eye.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := RunStep(context.Background(), c, "all", Options{Command: []string{"test"}}); err != nil {
		t.Fatal(err)
	}
	return out, c, truth
}

func TestPipelineRunFolder(t *testing.T) {
	out, c, truth := makeStudy(t)
	run, err := store.Open(filepath.Join(out, "run"))
	if err != nil {
		t.Fatal(err)
	}
	if run.Meta.Kind != Kind || run.Meta.Model == nil || len(run.Meta.Model.Files) == 0 {
		t.Fatalf("run.json: kind %q, model %+v", run.Meta.Kind, run.Meta.Model)
	}
	ids, err := run.Samples()
	if err != nil || len(ids) != len(truth) {
		t.Fatalf("samples %v (%v), want %d", ids, err, len(truth))
	}
	d := c.decays()[0]
	for _, id := range ids {
		s, err := run.Sample(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Tokens) == 0 || len(s.Offsets) != len(s.Tokens) || s.Source == "" || s.Extra["user_name"] == nil {
			t.Fatalf("sample %s: %d tokens, %d offsets, source %q", id, len(s.Tokens), len(s.Offsets), s.Source)
		}
		_, cw, err := readArray(run, PassCharWeights, id)
		if err != nil {
			t.Fatal(err)
		}
		_, tw, err := readArray(run, PassTokenWeights(c.Tokenization.ModelNames[0]), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(tw) != len(s.Tokens) || math.Abs(sum(tw)-sum(cw)) > 1e-9*sum(cw) || sum(cw) == 0 {
			t.Fatalf("sample %s: token weights total %v, character weights total %v", id, sum(tw), sum(cw))
		}
		shape, ft, err := readArray(run, PassFollowupTokens(d), id)
		if err != nil {
			t.Fatal(err)
		}
		n := len(s.Tokens)
		if len(shape) != 2 || shape[0] != n || shape[1] != n {
			t.Fatalf("follow-up tokens shape %v, want [%d %d]", shape, n, n)
		}
		nonzero := 0
		for i := 0; i < n; i++ {
			r := sum(ft[i*n : (i+1)*n])
			if r != 0 && math.Abs(r-1) > 1e-12 {
				t.Fatalf("row %d sums to %v after turn_lines_into_prob_distrib", i, r)
			}
			if r != 0 {
				nonzero++
			}
		}
		if nonzero < n/10 {
			t.Fatalf("only %d of %d rows have follow-up mass", nonzero, n)
		}
		lshape, _, err := readArray(run, PassFollowupLines(d), id)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(s.Text, "\n") + 1
		if lshape[0] != lshape[1] || lshape[0] > lines || lshape[0] < lines/2 {
			t.Fatalf("follow-up lines shape %v for %d lines", lshape, lines)
		}
		tlshape, tl, err := readArray(run, PassFollowupTokensLines(d), id)
		if err != nil {
			t.Fatal(err)
		}
		if tlshape[0] != n || math.Abs(sum(tl)-sum(ft)) > 1e-9*sum(ft) {
			t.Fatalf("token × line shape %v, total %v vs %v", tlshape, sum(tl), sum(ft))
		}
		if want := strings.Count(s.Text[:strings.LastIndexByte(strings.TrimRight(s.Text, "\n"), '\n')+1], "\n") + 1; tlshape[1] != want {
			t.Fatalf("token × line matrix has %d line columns, the text's last non-empty line is line %d", tlshape[1], want)
		}
		// Every output is recorded through the store with the axes report, plot and
		// derive draw and read it by.
		for pass, want := range map[string]string{
			PassCharWeights: "[char]", PassTokenWeights(c.Tokenization.ModelNames[0]): "[key]",
			PassFollowupTokens(d): "[query, key]", PassFollowupLines(d): "[line, line]", PassFollowupTokensLines(d): "[query, line]",
		} {
			ps, err := run.ReadPassSettings(pass)
			if err != nil {
				t.Fatal(err)
			}
			if got := store.AxesString(ps.Axes); got != want {
				t.Fatalf("pass %s: axes %s, want %s", pass, got, want)
			}
			out, err := run.Derived(pass, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.CheckAxes(ps.Axes, out.Shape); err != nil {
				t.Fatalf("pass %s: %v", pass, err)
			}
		}
	}
	avg := filepath.Join(out, "run", HumanDir, "decay_0.1", "data_avg_followup")
	heads := map[string]string{
		"df_distance_in_from_top1_token.csv":              "unique_data_id,current_token_position,target_position,prob_to_go_to_top1_target,total_tokens,distance_current_to_target",
		"df_base_top1_prob_based_on_distance.csv":         "distance_current_to_target,mean_prob_to_go_to_top1_target,number_of_samples",
		"df_entire_followup.csv":                          "unique_data_id,current_token_position,target_position,total_tokens,distance_current_to_target,prob_to_go_to_target,followup_abs_value,total_followup_abs_value",
		"df_base_all_prob_based_on_distance_rebuttal.csv": "distance_current_to_target,prob_to_go_to_target_mean,prob_to_go_to_target_count",
	}
	for f, h := range heads {
		rows := readCSV(t, filepath.Join(avg, f))
		if strings.Join(rows[0], ",") != h || len(rows) < 3 {
			t.Fatalf("%s: header %v, %d rows", f, rows[0], len(rows))
		}
	}
	ans := readCSV(t, filepath.Join(out, "run", HumanDir, "answers_dataset.csv"))
	if len(ans) != len(truth)+1 || strings.Join(ans[0], ",") != "unique_data_id,user,task_number,answer" {
		t.Fatalf("answers_dataset.csv: %v", ans)
	}
}

func sum(a []float64) float64 {
	var s float64
	for _, v := range a {
		s += v
	}
	return s
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}
