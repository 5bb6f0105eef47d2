package jobs

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

// slurmCluster is a single-node Slurm (munged, slurmctld, slurmd on localhost) started
// for a test from Debian's slurm-wlm and munge, with its own configuration, state,
// ports and munge socket in a temporary folder.
type slurmCluster struct {
	dir  string
	env  []string
	daes []*exec.Cmd
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (Debian packages slurm-wlm and munge; .ci/run installs them)", tool)
			}
			t.Skipf("%s is missing (install Debian's slurm-wlm and munge to run the Slurm test)", tool)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startSlurm(t *testing.T) *slurmCluster {
	t.Helper()
	needTools(t, "munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel")
	// The munge socket path must stay short (108 bytes): a folder under /tmp.
	dir, err := os.MkdirTemp("", "slurm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &slurmCluster{dir: dir}
	for _, d := range []string{"munge", "state", "spool", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	key, sock := filepath.Join(dir, "munge", "munge.key"), filepath.Join(dir, "munge", "munge.socket")
	if out, err := exec.Command("mungekey", "-c", "-k", key, "-b", "1024").CombinedOutput(); err != nil {
		t.Fatalf("mungekey: %v %s", err, out)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slurm.conf")
	text := fmt.Sprintf(`ClusterName=attnscope
SlurmctldHost=localhost
SlurmctldPort=%d
SlurmdPort=%d
AuthType=auth/munge
AuthInfo=socket=%[3]s
CredType=cred/munge
SlurmUser=%[4]s
SlurmdUser=%[4]s
StateSaveLocation=%[5]s/state
SlurmdSpoolDir=%[5]s/spool
SlurmctldPidFile=%[5]s/slurmctld.pid
SlurmdPidFile=%[5]s/slurmd.pid
SlurmctldLogFile=%[5]s/log/slurmctld.log
SlurmdLogFile=%[5]s/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=localhost CPUs=%[6]d RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
`, freePort(t), freePort(t), sock, u.Username, dir, runtime.NumCPU())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(os.Environ(), "SLURM_CONF="+conf)
	c.start(t, "munged", "-F", "--key-file="+key, "--socket="+sock, "--pid-file="+filepath.Join(dir, "munge", "pid"),
		"--log-file="+filepath.Join(dir, "munge", "log"), "--seed-file="+filepath.Join(dir, "munge", "seed"), "-f")
	c.waitFor(t, "munged", func() bool { _, err := os.Stat(sock); return err == nil })
	c.start(t, "slurmctld", "-D", "-i", "-f", conf)
	c.start(t, "slurmd", "-D", "-N", "localhost", "-f", conf)
	c.waitFor(t, "an idle Slurm node", func() bool {
		out, _ := c.cmd("sinfo", "-h", "-o", "%t").Output()
		return strings.TrimSpace(string(out)) == "idle"
	})
	return c
}

// start runs a daemon in the foreground; the test's cleanup kills it (by its pid).
func (c *slurmCluster) start(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := c.cmd(name, args...)
	log, _ := os.Create(filepath.Join(c.dir, "log", name+".out"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c.daes = append(c.daes, cmd)
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
	})
}

func (c *slurmCluster) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	return cmd
}

func (c *slurmCluster) waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			logs, _ := exec.Command("sh", "-c", "tail -n 20 "+c.dir+"/log/*").CombinedOutput()
			t.Fatalf("waited 60 s for %s; logs:\n%s", what, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queued lists the jobs in the queue as "id state reason" lines.
func (c *slurmCluster) queued(t *testing.T) string {
	out, err := c.cmd("squeue", "-h", "-o", "%i %t %r").Output()
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// buildBinary builds attnscope into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "attnscope")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/attnscope")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBin(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("attnscope %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// A 4-shard Slurm array job of capture + derive on the bundled default model, then
// merge, gives the single-machine run. One shard is killed (SIGKILL) in the middle of
// its capture: the merge job never starts, the shard's folder holds no sample that
// looks finished without being so, merge refuses the run, and a rerun of that one
// array task does only what is missing, after which the merge gives the same run.
func TestSlurmArrayCaptureDeriveMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster; skipped with -short")
	}
	c := startSlurm(t)
	bin := buildBinary(t)
	work := t.TempDir()
	model, _ := filepath.Abs(modelDir)
	prompts := filepath.Join(work, "prompts")
	os.MkdirAll(prompts, 0o755)
	for _, in := range addInputs(60) {
		os.WriteFile(filepath.Join(prompts, in.ID+".txt"), []byte(in.Text), 0o644)
	}
	cfg := filepath.Join(work, "derive.yaml")
	os.WriteFile(cfg, demoDeriveYAML(t), 0o644)
	capture := "capture --model " + model + " --prompts prompts --out {run}"
	derive := "derive --config derive.yaml --workers 1 {run}"
	// The single-machine run.
	runBin(t, work, bin, strings.Fields(strings.ReplaceAll(capture, "{run}", "local"))...)
	runBin(t, work, bin, strings.Fields(strings.ReplaceAll(derive, "{run}", "local"))...)

	files, err := SlurmFiles(Array{Name: "add", Shards: 4, Parallel: 2, Steps: []string{capture, derive}, Out: "runs/add", Binary: bin, Logs: "logs", CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFiles(filepath.Join(work, "jobs"), files); err != nil {
		t.Fatal(err)
	}
	sub := c.cmd("bash", "jobs/add.submit.sh")
	sub.Dir = work
	out, err := sub.CombinedOutput()
	if err != nil {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	var arrayID, mergeID string
	if _, err := fmt.Sscanf(string(out), "array job %s merge job %s", &arrayID, &mergeID); err != nil {
		t.Fatalf("submit printed %q", out)
	}
	arrayID = strings.TrimSuffix(arrayID, ",")

	// Kill shard 1 with SIGKILL once its capture has finished some samples, not all.
	victim := filepath.Join(work, "runs", "add.shard-1")
	var killed bool
	c.waitFor(t, "shard 1 in the middle of its capture", func() bool {
		r, err := store.Open(victim)
		if err != nil {
			return false
		}
		ms, _ := r.ShardManifests()
		if len(ms) == 0 || len(ms[0].Finished) < 2 {
			return false
		}
		if ms[0].Complete() {
			t.Fatalf("shard 1 finished its capture before it could be killed (%d samples)", len(ms[0].Assigned))
		}
		pid := findProcess(bin, "capture", "1/4")
		if pid > 0 {
			killed = syscall.Kill(pid, syscall.SIGKILL) == nil
		}
		return killed
	})
	// The other shards finish; the merge waits on a dependency that can no longer be met.
	c.waitFor(t, "the array to end", func() bool {
		q := c.queued(t)
		return q == mergeID+" PD DependencyNeverSatisfied"
	})
	if out, err := c.cmd("scancel", mergeID).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	checkNoFalseFinish(t, victim)
	m := exec.Command(bin, "merge", "--out", "runs/add", "runs/add.shard-0", "runs/add.shard-1", "runs/add.shard-2", "runs/add.shard-3")
	m.Dir = work
	if out, err := m.CombinedOutput(); err == nil || !strings.Contains(string(out), "capture shard 1/4 has not finished samples") {
		t.Fatalf("merge after the kill: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(work, "runs", "add")); !os.IsNotExist(err) {
		t.Fatal("the refused merge created runs/add")
	}

	// Rerun task 1 alone, then the merge after it.
	rerun := c.cmd("sbatch", "--parsable", "--array=1", "jobs/add.array.sbatch")
	rerun.Dir = work
	id, err := rerun.Output()
	if err != nil {
		t.Fatalf("sbatch rerun: %v", err)
	}
	mj := c.cmd("sbatch", "--parsable", "--dependency=afterok:"+strings.TrimSpace(string(id)), "jobs/add.merge.sbatch")
	mj.Dir = work
	if out, err := mj.CombinedOutput(); err != nil {
		t.Fatalf("sbatch merge: %v %s", err, out)
	}
	c.waitFor(t, "the rerun and the merge", func() bool { return c.queued(t) == "" })
	logs, _ := filepath.Glob(filepath.Join(work, "logs", "add-"+strings.TrimSpace(string(id))+"_1.out"))
	if len(logs) != 1 {
		t.Fatalf("no log of the rerun in %s/logs", work)
	}
	log, _ := os.ReadFile(logs[0])
	var captured, skipped int
	i := bytes.Index(log, []byte("captured "))
	if i < 0 {
		t.Fatalf("rerun log:\n%s", log)
	}
	fmt.Sscanf(string(log[i:]), "captured %d samples into runs/add.shard-1 (%d already finished", &captured, &skipped)
	if skipped < 2 || captured < 1 {
		t.Errorf("the rerun captured %d and skipped %d samples; want it to skip the ≥ 2 finished before the kill:\n%s", captured, skipped, log)
	}
	if err := SameRun(filepath.Join(work, "local"), filepath.Join(work, "runs", "add")); err != nil {
		mlog, _ := exec.Command("sh", "-c", "cat "+work+"/logs/add-merge-*").CombinedOutput()
		t.Fatalf("%v\nmerge logs:\n%s", err, mlog)
	}
	stale, _ := filepath.Glob(filepath.Join(victim, store.SamplesDir, "*", ".*.tmp-*"))
	if len(stale) > 0 {
		t.Errorf("temporary files of the killed capture remain after the rerun: %v", stale)
	}
}

// checkNoFalseFinish checks that every sample the killed shard's folder presents as
// finished reads whole, and that the manifest lists no sample that is not finished.
func checkNoFalseFinish(t *testing.T, dir string) {
	t.Helper()
	r, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := r.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := r.Attention(id); err != nil {
			t.Errorf("sample %s looks finished but its attention does not read: %v", id, err)
		}
	}
	ms, _ := r.ShardManifests()
	for _, f := range ms[0].Finished {
		if !r.Finished(f) {
			t.Errorf("the manifest lists %s as finished, its folder does not", f)
		}
	}
	if ms[0].Complete() {
		t.Error("the killed shard's manifest says it is complete")
	}
}

// findProcess returns the pid of a running process whose command line holds bin and
// every one of words (0 when none).
func findProcess(bin string, words ...string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || args[0] != bin {
			continue
		}
		all := true
		for _, w := range words {
			found := false
			for _, a := range args {
				if a == w {
					found = true
				}
			}
			all = all && found
		}
		if all {
			return pid
		}
	}
	return 0
}

// tinyLlamaEval copies the tiny-llama reference model, with Mistral's chat template,
// into work/"tiny llama" (a space, to exercise the scripts' quoting) and writes an
// AttentionSpan-style config evaluating n samples of each dataset; it returns the
// model folder and the config, relative to work.
func tinyLlamaEval(t *testing.T, work string, n int) (model, cfg string) {
	t.Helper()
	src := refdata.Path(t, "models", "tiny-llama")
	model = "tiny llama"
	if err := os.MkdirAll(filepath.Join(work, model), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(work, model, f), b, 0o644)
	}
	tc, err := os.ReadFile(filepath.Join(refdata.RepoRoot(), "tokenizer", "chat", "testdata", "templates", "mistral", "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(work, model, "tokenizer_config.json"), tc, 0o644)
	cfg = "eval.yaml"
	os.WriteFile(filepath.Join(work, cfg), []byte(fmt.Sprintf(`name: hf
model:
  name: meta-llama/Llama-3.2-1B-Instruct
  is_pretrained: true
training: null
evaluation:
  batch_size: 2
  visualize: false
  name: hf_eval
  dataset1:
    num_samples: %d
    generator: LongAdditionGenerator
    generator_parameters: {seed: 1, length: "1,2", apply_chat_template: true}
  dataset2:
    num_samples: %d
    generator: LongAdditionGenerator
    generator_parameters: {seed: 1, length: "3,4", apply_chat_template: true}
`, n, n)), 0o644)
	return model, cfg
}

// `evaluate` as a 4-shard Slurm array job (the form `attnscope jobs slurm -- evaluate
// ...` writes), then its merge job, gives the single-machine evaluation byte for byte:
// results.json, summary.csv and samples.csv. The model folder has a space and the
// output folder a space and a $, which the scripts must pass through unchanged.
func TestSlurmArrayEvaluateMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster; skipped with -short")
	}
	c := startSlurm(t)
	bin := buildBinary(t)
	work := t.TempDir()
	model, cfg := tinyLlamaEval(t, work, 7)
	runBin(t, work, bin, "evaluate", cfg, "--model", model, "--out", "local")

	a := Array{Name: "ev", Shards: 4, Parallel: 2, Binary: bin, Logs: "logs", CPUs: 1}
	if err := a.SetCommand([]string{"evaluate", cfg, "--model", model, "--out", "runs/ev $x"}, nil); err != nil {
		t.Fatal(err)
	}
	files, err := SlurmFiles(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFiles(filepath.Join(work, "jobs"), files); err != nil {
		t.Fatal(err)
	}
	sub := c.cmd("bash", "jobs/ev.submit.sh")
	sub.Dir = work
	out, err := sub.CombinedOutput()
	if err != nil {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	c.waitFor(t, "the array and the merge", func() bool { return c.queued(t) == "" })
	logs, _ := exec.Command("sh", "-c", "tail -n 5 "+work+"/logs/*").CombinedOutput()
	for i := range 4 {
		m, err := evaluate.ReadShardManifest(filepath.Join(work, "runs", fmt.Sprintf("ev $x.shard-%d", i)))
		if err != nil || m.Index != i || m.Count != 4 {
			t.Fatalf("shard %d: manifest %+v (%v); logs:\n%s", i, m, err, logs)
		}
	}
	merged := filepath.Join(work, "runs", "ev $x")
	if _, err := os.Stat(filepath.Join(merged, "results.json")); err != nil {
		t.Fatalf("the merge job wrote no results: %v; logs:\n%s", err, logs)
	}
	if err := SameRun(filepath.Join(work, "local"), merged); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, logs)
	}
}
