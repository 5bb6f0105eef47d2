package grading

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is required under CI")
		}
		t.Skip("python3 not installed")
	}
	return p
}

func spec(t *testing.T, yaml string) *TestSpec {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tests.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadTestSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const addTests = `tasks:
  - source: add.py
    files:
      test_add.py: |
        import add, os
        open("marker", "w").write("x")
        assert add.add(2, 3) == 5, "add(2, 3) != 5"
    command: [python3, test_add.py]
    timeout: 120s
    memory_mb: 256
  - source: loop.py
    program: add.py
    files:
      test_add.py: |
        import add
        assert add.add(2, 3) == 5
    command: [python3, test_add.py]
    timeout: 2s
`

// A passing, a failing and a looping program against the same tests; the tests run
// in a temporary folder that is removed, never the working directory.
func TestRunTests(t *testing.T) {
	python(t)
	s := spec(t, addTests)
	task := s.Task("prompts/add.py")
	if task == nil {
		t.Fatal("task not found by base name")
	}
	wd, _ := os.Getwd()
	before, _ := os.ReadDir(os.TempDir())
	cases := []struct {
		task, program, status, detail string
	}{
		{"add.py", "def add(a, b):\n    return a + b\n", "pass", "exit 0"},
		{"add.py", "def add(a, b):\n    return a - b\n", "fail", "add(2, 3) != 5"},
		{"loop.py", "def add(a, b):\n    while True:\n        pass\n", "timeout", "killed after 2s"},
	}
	for _, c := range cases {
		start := time.Now()
		r, err := s.RunTests(context.Background(), s.Task(c.task), []byte(c.program))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != c.status || !strings.Contains(r.Detail, c.detail) {
			t.Errorf("%q: %s (%s), want %s with %q", c.program, r.Status, r.Detail, c.status, c.detail)
		}
		if c.status == "timeout" && time.Since(start) > 20*time.Second {
			t.Errorf("%s took %s", c.status, time.Since(start))
		}
	}
	if _, err := os.Stat(filepath.Join(wd, "marker")); err == nil {
		os.Remove(filepath.Join(wd, "marker"))
		t.Fatal("the tests wrote into the working directory")
	}
	after, _ := os.ReadDir(os.TempDir())
	for _, e := range after {
		if strings.HasPrefix(e.Name(), "attnscope-tests-") && !contains(before, e.Name()) {
			t.Errorf("temporary folder %s left behind", e.Name())
		}
	}
}

func contains(es []os.DirEntry, name string) bool {
	for _, e := range es {
		if e.Name() == name {
			return true
		}
	}
	return false
}

// A program that allocates far beyond memory_mb fails instead of taking the machine.
func TestRunTestsMemoryLimit(t *testing.T) {
	python(t)
	s := spec(t, `tasks:
  - source: big.py
    command: [python3, big.py]
    memory_mb: 256
`)
	r, err := s.RunTests(context.Background(), s.Task("big.py"), []byte("x = bytearray(1 << 30)\nprint(len(x))\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "fail" || !strings.Contains(r.Detail, "MemoryError") {
		t.Fatalf("1 GiB under a 256 MB limit: %s (%s)", r.Status, r.Detail)
	}
}

func TestLoadTestSpecErrors(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"tasks:\n  - source: a.py\n":                                         "command are required",
		"tasks:\n  - source: a.py\n    command: [x]\n    timeout: soon\n":    "timeout",
		"tasks:\n  - source: a.py\n    command: [x]\n    files: {../e: x}\n": "plain name",
		"tasks:\n  - source: a.py\n    comand: [x]\n":                        "comand",
	} {
		p := filepath.Join(dir, "t.yaml")
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadTestSpec(p); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: %v, want an error naming %s and %q", body, err, p, want)
		}
	}
}

func annotations(t *testing.T) string {
	return refdata.Path(t, "..", "datasets", "followup-attention", "annotations")
}

// The study's grading files import with every grade, the expected first rows and no
// error.
func TestImportStudyGrades(t *testing.T) {
	dir := annotations(t)
	counts := map[string]int{}
	gs, err := ImportGrades([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		counts[filepath.Base(g.Source)]++
	}
	for f, n := range map[string]int{
		"Answer Evaluation - Users - CODEGEN_SCORE.csv": 135, "Answer Evaluation - Users - GPTJ_SCORE.csv": 135,
		"Answer Evaluation - Users - HUMAN_SCORE.csv": 92, "Answer Evaluation - Users - INCODER_SCORE.csv": 135,
	} {
		if counts[f] != n {
			t.Errorf("%s: %d grades, want %d", f, counts[f], n)
		}
	}
	if counts["codegen.csv"] < 90 || counts["participants_eye.csv"] < 90 {
		t.Errorf("annotation sheets: %v", counts)
	}
	first := map[string]Grade{}
	for _, g := range gs {
		if _, ok := first[filepath.Base(g.Source)]; !ok {
			first[filepath.Base(g.Source)] = g
		}
	}
	g := first["Answer Evaluation - Users - CODEGEN_SCORE.csv"]
	if g.Filename != "tree_Q3.py_0_Salesforce_codegen-16B-multi" || g.ModelName != "codegen-16B-multi" || g.NTry != "0" || g.Score != 2 || g.Row != 2 {
		t.Errorf("first CODEGEN score %+v", g)
	}
	h := first["Answer Evaluation - Users - HUMAN_SCORE.csv"]
	if h.UniqueDataID != "d41dd8" || h.User != "UbeerU" || h.TaskNumber != "3" || h.Filename != "multithread_Q2.py" || h.Score != 0 || h.Kind != "human" {
		t.Errorf("first HUMAN score %+v", h)
	}
	p := first["participants_eye.csv"]
	if p.UniqueDataID != "b0172f" || p.Annotator != "Annotator 1 (Matteo)" || p.Criterion != "overall" || p.Score != 5 || p.Scale != "1-5" {
		t.Errorf("first participants_eye grade %+v", p)
	}
	out := filepath.Join(t.TempDir(), "grades.csv")
	if err := WriteGrades(out, gs); err != nil {
		t.Fatal(err)
	}
}

func TestReadGradesBadInput(t *testing.T) {
	for body, want := range map[string][]string{
		"filename,model_name,n_try,score\na,m,0,3\n":                         {"g.csv", "line 2", `column "score"`, "0 to 2"},
		"filename,model_name,n_try,score\na,m,0\n":                           {"g.csv", "line 2", "3 fields"},
		"file,score\na,1\n":                                                  {"g.csv", "line 1", "none of the grading formats"},
		"ID,filename,model_name,n_try,answer,Annotator 1 (A)\n1,f,m,0,x,9\n": {"g.csv", "line 2", "Annotator 1 (A)", "1 to 5"},
		"": {"g.csv", "empty"},
	} {
		_, err := readGrades("g.csv", strings.NewReader(body))
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want %q", body, err, w)
			}
		}
	}
}

func newRun(t *testing.T, samples ...*store.Sample) *store.Run {
	t.Helper()
	r, err := store.Create(t.TempDir(), store.Meta{Kind: "capture", Model: &store.ModelInfo{Dir: "/models/code-gpt2-mini"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if err := r.WriteSample(s); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestMachineAnswers(t *testing.T) {
	r := newRun(t,
		&store.Sample{ID: "hannoi_Q1.py_1_gpt", Text: "def f():\n    pass\n# Question: what?\n# Answer: it moves disks", Try: 1, Source: "hannoi_Q1.py"},
		&store.Sample{ID: "tree_Q2.py_0_gpt", Text: "x = 1\n# Question: why?\n# Answer:", Try: 0})
	as, err := MachineAnswers(r, AnswerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Answer != "hannoi_Q1.py_1_gpt\nQuestion: what?\n# Answer: it moves disks" || as[0].ModelName != "code-gpt2-mini" || as[0].NTry != "1" {
		t.Fatalf("answers %+v", as)
	}
	b, err := os.ReadFile(filepath.Join(r.Dir(), "machine_answers.csv"))
	if err != nil || !strings.HasPrefix(string(b), "filename,model_name,n_try,answer\nhannoi_Q1.py_1_gpt,code-gpt2-mini,1,\"hannoi_Q1.py_1_gpt\nQuestion: what?") {
		t.Fatalf("machine_answers.csv: %q %v", b, err)
	}
	if txt, _ := os.ReadFile(filepath.Join(r.Dir(), "answers", "tree_Q2.py_0_gpt.txt")); string(txt) != "tree_Q2.py_0_gpt\nQuestion: why?\n# Answer:" {
		t.Fatalf("answer file %q", txt)
	}
	as, err = MachineAnswers(r, AnswerOptions{UnknownModelName: true, TryFromName: true})
	if err != nil || as[0].ModelName != "unknown" || as[0].NTry != "1" || as[1].NTry != "0" {
		t.Fatalf("original behaviour: %+v %v", as, err)
	}
	bad := newRun(t, &store.Sample{ID: "s", Text: "no question here"})
	if _, err := MachineAnswers(bad, AnswerOptions{}); err == nil || !strings.Contains(err.Error(), "sample s") {
		t.Fatalf("missing Question: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bad.Dir(), "machine_answers.csv")); err == nil {
		t.Fatal("machine_answers.csv written despite the error")
	}
}

func TestCheck(t *testing.T) {
	python(t)
	r := newRun(t,
		&store.Sample{ID: "good", Text: "def add(a, b):\n    return a + b\n", Source: "add.py", Language: "python", IDs: []int{1, 2, 3, 4}, PromptLen: 3,
			Generated: []store.GeneratedToken{{ID: 4, Token: "b"}}},
		&store.Sample{ID: "bad", Text: "def add(a, b)\n    return a +\n", Source: "add.py", Language: "python"},
		&store.Sample{ID: "cpp", Text: "int main() { return 0; }\n", Source: "main.cpp"},
		&store.Sample{ID: "txt", Text: "hello", Source: "notes.txt"})
	rs, err := Check(context.Background(), r, spec(t, addTests))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]CheckResult{}
	for _, c := range rs {
		got[c.Sample] = c
	}
	if c := got["good"]; !c.SyntaxChecked || !c.SyntaxValid || c.GeneratedTokens != 1 || c.Tests != "pass" {
		t.Errorf("good: %+v", c)
	}
	if c := got["bad"]; !c.SyntaxChecked || c.SyntaxValid || c.SyntaxErrors == 0 || c.FirstError == "" || c.Tests != "fail" {
		t.Errorf("bad: %+v", c)
	}
	if c := got["cpp"]; !c.SyntaxChecked || !c.SyntaxValid || c.Tests != "" {
		t.Errorf("cpp (language from the extension): %+v", c)
	}
	if c := got["txt"]; c.SyntaxChecked {
		t.Errorf("txt: %+v", c)
	}
	if err := WriteChecks(filepath.Join(t.TempDir(), "checks.csv"), rs); err != nil {
		t.Fatal(err)
	}
}

func FuzzReadGrades(f *testing.F) {
	f.Add([]byte("filename,model_name,n_try,score\na,m,0,2\n"))
	f.Add([]byte("unique_data_id,user,task_number,filename,score\nd41dd8,U,3,x.py,0\n"))
	f.Add([]byte("ID,filename,model_name,n_try,answer,Annotator 1 (A),,A1 - Correctness\n1,f,m,0,\"x\ny\",5,,3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		gs, err := readGrades("fuzz.csv", strings.NewReader(string(data)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, g := range gs {
			if (g.Scale == "0-2" && (g.Score < 0 || g.Score > 2)) || (g.Scale == "1-5" && (g.Score < 1 || g.Score > 5)) {
				t.Fatalf("grade out of its scale: %+v", g)
			}
		}
	})
}
