package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// attnscope human generate, then every step, then grade answers/check and import.
func TestHumanAndGradeCommands(t *testing.T) {
	data := refdata.Path(t, "..", "datasets", "followup-attention")
	tok := refdata.Path(t, "models", "code-gpt2-mini")
	out := filepath.Join(t.TempDir(), "study")
	if got := run([]string{"human", "generate", "--questions", filepath.Join(data, "human_attention_tasks"), "--files", "sensemaking/tree_Q*.py",
		"--participants", "2", "--tokenizer", tok, "--out", out}); got != exitOK {
		t.Fatalf("human generate: exit %d", got)
	}
	cfg := filepath.Join(out, "eye.yaml")
	for _, step := range []string{"getweights", "derivetokenweights", "getfollowup", "derivefollowupline", "getanswers", "getanswersdataset"} {
		if got := run([]string{"human", "--config", cfg, step}); got != exitOK {
			t.Fatalf("human %s: exit %d", step, got)
		}
	}
	if got := run([]string{"human", "--config", cfg, "getwieghts"}); got != exitError {
		t.Fatalf("unknown step: exit %d, want %d", got, exitError)
	}
	if got := run([]string{"human", "getweights"}); got != exitUsage {
		t.Fatalf("no --config: exit %d, want %d", got, exitUsage)
	}
	runDir := filepath.Join(out, "run")
	if got := run([]string{"grade", "check", runDir}); got != exitOK {
		t.Fatalf("grade check: exit %d", got)
	}
	if _, err := os.Stat(filepath.Join(runDir, "checks.csv")); err != nil {
		t.Fatal(err)
	}
	if got := run([]string{"grade", "answers", runDir}); got != exitOK {
		t.Fatalf("grade answers: exit %d", got)
	}
	grades := filepath.Join(t.TempDir(), "grades.csv")
	if got := run([]string{"grade", "import", "--out", grades, filepath.Join(data, "annotations")}); got != exitOK {
		t.Fatalf("grade import: exit %d", got)
	}
}

// A human run made by attnscope human is derived (passes reading its follow-up
// matrix), reported and plotted like a machine run.
func TestHumanRunDeriveReportPlot(t *testing.T) {
	data := refdata.Path(t, "..", "datasets", "followup-attention")
	tok := refdata.Path(t, "models", "code-gpt2-mini")
	out := filepath.Join(t.TempDir(), "study")
	if got := run([]string{"human", "generate", "--questions", filepath.Join(data, "human_attention_tasks"), "--files", "sensemaking/hannoi_Q1.*",
		"--participants", "2", "--tokenizer", tok, "--out", out}); got != exitOK {
		t.Fatalf("human generate: exit %d", got)
	}
	if got := run([]string{"human", "--config", filepath.Join(out, "eye.yaml"), "all"}); got != exitOK {
		t.Fatalf("human all: exit %d", got)
	}
	runDir := filepath.Join(out, "run")
	cfg := filepath.Join(t.TempDir(), "derive-human.yaml")
	if err := os.WriteFile(cfg, []byte(`passes:
  - {name: followup_sym, input: followup_tokens.decay_0.1, function: make_symmetric}
  - {name: followup_chars, input: followup_sym, function: attention_to_chars}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := run([]string{"derive", "--config", cfg, runDir}); got != exitOK {
		t.Fatalf("derive on a human run: exit %d", got)
	}
	html := filepath.Join(t.TempDir(), "report.html")
	if got := run([]string{"report", runDir, "--out", html, "--figures", "derived"}); got != exitOK {
		t.Fatalf("report on a human run: exit %d", got)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{`id="human"`, "Human reading", "df_base_top1_prob_based_on_distance.csv", "df_base_all_prob_based_on_distance_rebuttal.csv",
		"Derived: char_weights (over the source code)", "Derived: followup_chars (over the source code)",
		"Derived: followup_tokens.decay_0.1", "Derived: followup_lines.decay_0.1", "Derived: followup_tokens_lines.decay_0.1",
		"Derived: token_weights.code-gpt2-mini", "Derived: followup_sym", "hannoi_Q1", `<th class="k">kind</th><td class="v">human</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Without --figures, every session shows its character weights over the code.
	if got := run([]string{"report", runDir, "--out", html}); got != exitOK {
		t.Fatalf("report on a human run: exit %d", got)
	}
	b, err = os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "Derived: char_weights (over the source code)"); n != 2 {
		t.Errorf("default report: %d character-weight heatmaps for 2 sessions", n)
	}
	if strings.Contains(page, `class="note">pass`) {
		t.Errorf("a derived output could not be drawn by its axes")
	}
	for _, pass := range []string{"char_weights", "followup_tokens.decay_0.1", "followup_lines.decay_0.1", "followup_tokens_lines.decay_0.1", "token_weights.code-gpt2-mini", "followup_chars"} {
		png := filepath.Join(t.TempDir(), "fig.png")
		if got := run([]string{"plot", "derived", runDir, "--pass", pass, "--out", png}); got != exitOK {
			t.Fatalf("plot derived --pass %s: exit %d", pass, got)
		}
		if st, err := os.Stat(png); err != nil || st.Size() < 1000 {
			t.Fatalf("plot derived --pass %s: %v", pass, err)
		}
	}
	// Attention figures on a human run: one clear sentence, non-zero exit.
	if got := run([]string{"plot", "heatmap", runDir, "--out", filepath.Join(t.TempDir(), "h.png")}); got != exitError {
		t.Fatalf("plot heatmap on a human run: exit %d, want %d", got, exitError)
	}
}
