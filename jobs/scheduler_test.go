package jobs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

func testArray() Array {
	return Array{
		Name: "code", Shards: 4, Parallel: 2, Out: "runs/my run",
		Steps: []string{
			`capture --model models/default --prompts 'my prompts' --text "it's" --out {run}`,
			`derive --config c.yaml {run}`,
		},
		CPUs: 2, Memory: "4Gi", GPUs: 1, Image: "ghcr.io/attnscope/attnscope:1", Claim: "runs", Retries: 2, Time: "01:00:00",
	}
}

// stub writes an executable that prints each argument on its own line, standing in
// for attnscope.
func stub(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "attnscope")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done; echo\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The sbatch array script maps SLURM_ARRAY_TASK_ID to --shard and {run} to the shard's
// folder, keeping the steps' quoting; the merge script names every shard folder.
func TestSlurmFiles(t *testing.T) {
	a := testArray()
	a.Binary = stub(t)
	files, err := SlurmFiles(a)
	if err != nil {
		t.Fatal(err)
	}
	arr := files["code.array.sbatch"]
	for _, want := range []string{"#SBATCH --array=0-3%2\n", "#SBATCH --cpus-per-task=2\n", "#SBATCH --mem=4Gi\n", "#SBATCH --gpus-per-task=1\n",
		"#SBATCH --time=01:00:00\n", "#SBATCH --output=logs/code-%A_%a.out\n", "SLURM_ARRAY_TASK_ID"} {
		if !strings.Contains(arr, want) {
			t.Errorf("array script lacks %q:\n%s", want, arr)
		}
	}
	dir := t.TempDir()
	if _, err := WriteFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(dir, "code.array.sbatch"))
	cmd.Env = append(os.Environ(), "SLURM_ARRAY_TASK_ID=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("array script: %v\n%s", err, out)
	}
	want := "[capture][--model][models/default][--prompts][my prompts][--text][it's][--out][runs/my run.shard-2][--shard][2/4]\n" +
		"[derive][--config][c.yaml][runs/my run.shard-2][--shard][2/4]\n"
	if string(out) != want {
		t.Errorf("shard 2 ran\n%s\nwant\n%s", out, want)
	}
	out, err = exec.Command("bash", filepath.Join(dir, "code.merge.sbatch")).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if want := "[merge][--out][runs/my run][runs/my run.shard-0][runs/my run.shard-1][runs/my run.shard-2][runs/my run.shard-3]\n"; string(out) != want {
		t.Errorf("merge ran %s, want %s", out, want)
	}
	if out, err := exec.Command("bash", "-n", filepath.Join(dir, "code.submit.sh")).CombinedOutput(); err != nil {
		t.Errorf("submit script: %v %s", err, out)
	}
}

// The Kubernetes manifests decode strictly (unknown or mistyped fields fail) into
// the batch/v1 Job of the Kubernetes API (k8s.io/api), as an API server would decode
// them, and the Indexed Job's script runs shard JOB_COMPLETION_INDEX.
func TestK8sFilesDecodeStrictly(t *testing.T) {
	a := testArray()
	a.Binary = stub(t)
	files, err := K8sFiles(a)
	if err != nil {
		t.Fatal(err)
	}
	var job, merge batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(files["code.k8s.yaml"]), &job); err != nil {
		t.Fatalf("code.k8s.yaml: %v\n%s", err, files["code.k8s.yaml"])
	}
	if err := yaml.UnmarshalStrict([]byte(files["code.merge.k8s.yaml"]), &merge); err != nil {
		t.Fatalf("code.merge.k8s.yaml: %v", err)
	}
	s := job.Spec
	switch {
	case job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Name != "code":
		t.Errorf("type/name: %s %s %s", job.APIVersion, job.Kind, job.Name)
	case s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion:
		t.Errorf("completionMode: %v", s.CompletionMode)
	case s.Completions == nil || *s.Completions != 4 || s.Parallelism == nil || *s.Parallelism != 2:
		t.Errorf("completions/parallelism: %v %v", s.Completions, s.Parallelism)
	case s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex != 2:
		t.Errorf("backoffLimitPerIndex: %v", s.BackoffLimitPerIndex)
	case s.Template.Spec.RestartPolicy != "Never": // the API requires Never with backoffLimitPerIndex
		t.Errorf("restartPolicy %q", s.Template.Spec.RestartPolicy)
	case len(s.Template.Spec.Containers) != 1 || len(s.Template.Spec.Volumes) != 1:
		t.Errorf("containers/volumes: %+v", s.Template.Spec)
	}
	c := s.Template.Spec.Containers[0]
	if q := c.Resources.Limits["nvidia.com/gpu"]; q.Value() != 1 {
		t.Errorf("gpu limit %v", q.String())
	}
	if q := c.Resources.Requests["memory"]; q.Value() != 4<<30 {
		t.Errorf("memory request %v", q.String())
	}
	if len(c.Args) != 1 || c.Command[0] != "/bin/sh" {
		t.Fatalf("command %v args %v", c.Command, c.Args)
	}
	cmd := exec.Command("/bin/sh", "-c", c.Args[0])
	cmd.Env = append(os.Environ(), "JOB_COMPLETION_INDEX=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("shard script: %v %s", err, out)
	}
	if !strings.Contains(string(out), "[--prompts][my prompts][--text][it's][--out][runs/my run.shard-3][--shard][3/4]") {
		t.Errorf("shard 3 ran %s", out)
	}
	mc := merge.Spec.Template.Spec.Containers[0]
	out, err = exec.Command("/bin/sh", "-c", mc.Args[0]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "[merge][--out][runs/my run][runs/my run.shard-0]") {
		t.Errorf("merge job ran %s (%v)", out, err)
	}
	// A manifest with a misspelt field is refused by the same decoding (the check is
	// not vacuous).
	bad := strings.Replace(files["code.k8s.yaml"], "backoffLimitPerIndex", "backoffLimitPerIndx", 1)
	if err := yaml.UnmarshalStrict([]byte(bad), &batchv1.Job{}); err == nil {
		t.Error("a misspelt field decoded")
	}
}

func TestArrayErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Array)
		want string
	}{
		{func(a *Array) { a.Shards = 0 }, "--shards must be at least 1"},
		{func(a *Array) { a.Name = "Bad_Name" }, "--name"},
		{func(a *Array) { a.Steps = []string{"capture --out x"} }, "{run}"},
		{func(a *Array) { a.Steps = []string{"capture --shard 1/2 --out {run}"} }, "leave out --shard"},
		{func(a *Array) { a.Steps = []string{"capture 'x --out {run}"} }, "unclosed ' quote"},
		{func(a *Array) { a.Out = "" }, "--out"},
		{func(a *Array) { a.Image = "" }, "--image"},
	} {
		a := testArray()
		tc.edit(&a)
		_, err := K8sFiles(a)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
}
