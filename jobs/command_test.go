package jobs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/store"
)

// tricky is an argument a shell would split, expand or choke on unquoted.
const tricky = `it's "$HOME" ` + "`id`" + ` $(id) \ a  b;*`

// commandCase is one command line after --, with what shard i of 4 must run and what
// the merge must join.
type commandCase struct {
	argv  []string
	shard func(i int) []string // the argv shard i runs (before --shard i/4)
	merge []string             // the merge's argv
}

func commandCases() []commandCase {
	shards := func(f string) []string {
		var s []string
		for i := range 4 {
			s = append(s, fmt.Sprintf(f, i))
		}
		return s
	}
	return []commandCase{
		{
			argv: []string{"capture", "--model", "models/default", "--prompts", "my prompts", "--text", tricky, "--out", "runs/my $run"},
			shard: func(i int) []string {
				return []string{"capture", "--model", "models/default", "--prompts", "my prompts", "--text", tricky, "--out", fmt.Sprintf("runs/my $run.shard-%d", i)}
			},
			merge: append([]string{"merge", "--out", "runs/my $run"}, shards("runs/my $run.shard-%d")...),
		},
		{
			argv: []string{"evaluate", "exp dir/e.yaml", "training=null", "--model", "m", "--out=res", "evaluation.name=" + tricky},
			shard: func(i int) []string {
				return []string{"evaluate", "exp dir/e.yaml", "training=null", "--model", "m", fmt.Sprintf("--out=res.shard-%d", i), "evaluation.name=" + tricky}
			},
			merge: append([]string{"merge", "--out", "res"}, shards("res.shard-%d")...),
		},
		{
			argv: []string{"diagnose", "jacobian", "--model", "bert", "-o", "d", "--text", tricky},
			shard: func(i int) []string {
				return []string{"diagnose", "jacobian", "--model", "bert", "-o", fmt.Sprintf("d.shard-%d", i), "--text", tricky}
			},
			merge: append([]string{"merge", "--out", "d"}, shards("d.shard-%d")...),
		},
		{
			argv: []string{"diagnose", "layernorm", "--model", "bert", "--out", "ln", "--train"},
			shard: func(i int) []string {
				return []string{"diagnose", "layernorm", "--model", "bert", "--out", fmt.Sprintf("ln.shard-%d", i), "--train"}
			},
			merge: append([]string{"merge", "--out", "ln"}, shards("ln.shard-%d")...),
		},
		{
			// Every shard derives in the run itself; the merge gathers its metrics table.
			argv:  []string{"derive", "--config", "c.yaml", "-j", "1", "runs/a b'c"},
			shard: func(int) []string { return []string{"derive", "--config", "c.yaml", "-j", "1", "runs/a b'c"} },
			merge: []string{"merge", "--out", "runs/a b'c", "runs/a b'c"},
		},
		{
			// compare writes output_comparison_folder/shard-<i>-of-<n> by itself.
			argv:  []string{"compare", "--config", "cfg/cmp $1.yaml"},
			shard: func(int) []string { return []string{"compare", "--config", "cfg/cmp $1.yaml"} },
			merge: append([]string{"merge", "--out", "cfg/out dir"}, shards("cfg/out dir/shard-%d-of-4")...),
		},
	}
}

// fakeCompareOut stands for reading a comparator config.
func fakeCompareOut(config string) (string, error) {
	if config != "cfg/cmp $1.yaml" {
		return "", fmt.Errorf("unexpected config %q", config)
	}
	return "cfg/out dir", nil
}

// bracket is what the stub prints for argv.
func bracket(argv []string) string {
	var b strings.Builder
	for _, a := range argv {
		b.WriteString("[" + a + "]")
	}
	return b.String() + "\n"
}

// fakeSbatch is a folder holding an sbatch that logs its arguments (one call a line,
// each argument bracketed) to log and prints job id 100, 101, ...
func fakeSbatch(t *testing.T) (dir, log string) {
	dir = t.TempDir()
	log = filepath.Join(dir, "calls")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\" >> " + shellQuote(log) + "; done\necho >> " + shellQuote(log) +
		"\nn=$(wc -l < " + shellQuote(log) + ")\necho $((99 + n))\\;cluster\n"
	if err := os.WriteFile(filepath.Join(dir, "sbatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, log
}

// Each sharded command after -- gives an sbatch array whose task i runs the command
// with --shard i/4 and its output replaced by shard i's folder (arguments with
// spaces, quotes, $, backquotes and backslashes passed through unchanged), a merge
// script that joins exactly those folders into the command's output, and a submit
// script that submits the merge with --dependency=afterok on the array's job id.
func TestCommandArraysSlurm(t *testing.T) {
	bin := stub(t)
	for _, tc := range commandCases() {
		t.Run(tc.argv[0], func(t *testing.T) {
			a := Array{Name: "job", Shards: 4, Parallel: 2, Binary: bin, CPUs: 1}
			if err := a.SetCommand(tc.argv, fakeCompareOut); err != nil {
				t.Fatal(err)
			}
			files, err := SlurmFiles(a)
			if err != nil {
				t.Fatal(err)
			}
			arr := files["job.array.sbatch"]
			if got := regexp.MustCompile(`(?m)^#SBATCH --array=(.*)$`).FindAllStringSubmatch(arr, -1); len(got) != 1 || got[0][1] != "0-3%2" {
				t.Errorf("array lines %q, want one --array=0-3%%2", got)
			}
			dir := t.TempDir()
			if _, err := WriteFiles(dir, files); err != nil {
				t.Fatal(err)
			}
			for i := range 4 {
				cmd := exec.Command("bash", filepath.Join(dir, "job.array.sbatch"))
				cmd.Env = append(os.Environ(), fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d", i))
				out, err := cmd.CombinedOutput()
				if want := bracket(append(tc.shard(i), "--shard", fmt.Sprintf("%d/4", i))); err != nil || string(out) != want {
					t.Errorf("task %d ran %s(%v), want %s", i, out, err, want)
				}
			}
			out, err := exec.Command("bash", filepath.Join(dir, "job.merge.sbatch")).CombinedOutput()
			if want := bracket(tc.merge); err != nil || string(out) != want {
				t.Errorf("merge ran %s(%v), want %s", out, err, want)
			}
			path, log := fakeSbatch(t)
			sub := exec.Command("bash", filepath.Join(dir, "job.submit.sh"))
			sub.Dir = t.TempDir()
			sub.Env = append(os.Environ(), "PATH="+path+":"+os.Getenv("PATH"))
			if out, err := sub.CombinedOutput(); err != nil || string(out) != "array job 100, merge job 101\n" {
				t.Fatalf("submit: %s(%v)", out, err)
			}
			calls, _ := os.ReadFile(log)
			want := bracket([]string{"--parsable", dir + "/job.array.sbatch"}) + bracket([]string{"--parsable", "--dependency=afterok:100", dir + "/job.merge.sbatch"})
			if string(calls) != want {
				t.Errorf("sbatch calls\n%s\nwant\n%s", calls, want)
			}
		})
	}
}

// The same commands as Kubernetes manifests decode strictly into the API's batch/v1
// Job; pod JOB_COMPLETION_INDEX=i runs shard i, the merge Job joins the shard folders.
func TestCommandArraysK8s(t *testing.T) {
	bin := stub(t)
	for _, tc := range commandCases() {
		t.Run(tc.argv[0], func(t *testing.T) {
			a := Array{Name: "job", Shards: 4, Parallel: 2, Binary: bin, Image: "img:1", Claim: "runs", Retries: 1}
			if err := a.SetCommand(tc.argv, fakeCompareOut); err != nil {
				t.Fatal(err)
			}
			files, err := K8sFiles(a)
			if err != nil {
				t.Fatal(err)
			}
			var job, merge batchv1.Job
			if err := yaml.UnmarshalStrict([]byte(files["job.k8s.yaml"]), &job); err != nil {
				t.Fatalf("job.k8s.yaml: %v\n%s", err, files["job.k8s.yaml"])
			}
			if err := yaml.UnmarshalStrict([]byte(files["job.merge.k8s.yaml"]), &merge); err != nil {
				t.Fatalf("job.merge.k8s.yaml: %v", err)
			}
			s := job.Spec
			if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion || *s.Completions != 4 || *s.Parallelism != 2 || *s.BackoffLimitPerIndex != 1 {
				t.Errorf("Indexed Job spec %+v", s)
			}
			for i := range 4 {
				cmd := exec.Command("/bin/sh", "-c", s.Template.Spec.Containers[0].Args[0])
				cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
				out, err := cmd.CombinedOutput()
				if want := bracket(append(tc.shard(i), "--shard", fmt.Sprintf("%d/4", i))); err != nil || string(out) != want {
					t.Errorf("index %d ran %s(%v), want %s", i, out, err, want)
				}
			}
			out, err := exec.Command("/bin/sh", "-c", merge.Spec.Template.Spec.Containers[0].Args[0]).CombinedOutput()
			if want := bracket(tc.merge); err != nil || string(out) != want {
				t.Errorf("merge Job ran %s(%v), want %s", out, err, want)
			}
		})
	}
}

func TestSetCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		out  string
		want string
	}{
		{[]string{"run", "exp.yaml"}, "", "run has no --shard"},
		{[]string{"gc", "x"}, "", `"gc" has no --shard`},
		{[]string{"attnscope", "capture", "--out", "x"}, "", `leave out the leading "attnscope"`},
		{[]string{"capture", "--model", "m"}, "", "--out FOLDER is required"},
		{[]string{"capture", "--out", "a", "-o", "b"}, "", "give --out once"},
		{[]string{"capture", "--out", "a", "--shard", "0/2"}, "", "leave out --shard"},
		{[]string{"capture", "--out", "a"}, "b", `--out "b" differs`},
		{[]string{"capture", "--out", "a", "--text", "x\ny"}, "", "line break"},
		{[]string{"capture", "--out", "{run}"}, "", "{run} is kept"},
		{[]string{"diagnose", "plot", "--out", "f.png"}, "", "subcommands jacobian"},
		{[]string{"derive", "--config", "c.yaml"}, "", "one RUN folder expected"},
		{[]string{"derive", "--list"}, "", "nothing to shard"},
		{[]string{"compare"}, "", "--config FILE is required"},
		{[]string{"compare", "--config", "x.yaml"}, "", "unexpected config"},
		{nil, "", "give the command to shard after --"},
	} {
		a := Array{Name: "x", Shards: 2, Out: tc.out}
		err := a.SetCommand(tc.argv, fakeCompareOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.argv, err, tc.want)
		}
	}
	a := Array{Name: "x", Shards: 2, Steps: []string{"capture --out {run}"}}
	if err := a.SetCommand([]string{"capture", "--out", "y"}, nil); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("--step and a command: %v", err)
	}
}

// derive's array derives every shard's samples in the run folder itself: its four
// tasks, run at once by the real binary, then the merge (merge --out RUN RUN, which
// gathers the metrics table of every sample), give the single-machine derive.
func TestDeriveArrayInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds attnscope and runs four derive shards; skipped with -short")
	}
	bin := buildBinary(t)
	work := t.TempDir()
	ctx := context.Background()
	in := addInputs(24)
	for _, d := range []string{"local", filepath.Join("runs", "my run")} {
		if _, err := capture.Run(ctx, filepath.Join(work, d), in, capture.Options{ModelDir: modelDir}); err != nil {
			t.Fatal(err)
		}
	}
	local, err := store.Open(filepath.Join(work, "local"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := derive.Derive(ctx, local, deriveConfig(t), derive.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(work, "derive.yaml"), demoDeriveYAML(t), 0o644)
	a := Array{Name: "der", Shards: 4, Binary: bin}
	if err := a.SetCommand([]string{"derive", "--config", "derive.yaml", "--workers", "1", "runs/my run"}, nil); err != nil {
		t.Fatal(err)
	}
	files, err := SlurmFiles(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFiles(filepath.Join(work, "jobs"), files); err != nil {
		t.Fatal(err)
	}
	all := exec.Command("bash", "-c", `for i in 0 1 2 3; do SLURM_ARRAY_TASK_ID=$i bash jobs/der.array.sbatch > log-$i 2>&1 & done; wait; cat log-*; bash jobs/der.merge.sbatch`)
	all.Dir = work
	out, err := all.CombinedOutput()
	if err != nil {
		t.Fatalf("array + merge: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "merged 1 shard folders into runs/my run: 24 samples (0 copied)") {
		t.Errorf("merge printed:\n%s", out)
	}
	if err := SameRun(filepath.Join(work, "local"), filepath.Join(work, "runs", "my run")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
