package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// Array describes a sharded job: Steps run in every shard (each an attnscope command
// line in which {run} stands for the shard's folder, by default <Out>.shard-<i>, and to
// which --shard i/n is appended), then one merge joins the shard folders into Out.
type Array struct {
	Name     string   // job name (letters, digits, - and _)
	Shards   int      // n
	Parallel int      // at most this many shards at once (0: no limit)
	Steps    []string // attnscope command lines without "attnscope", e.g. "capture --model M --prompts P --out {run}"
	Out      string   // the merged folder
	// ShardDir is shard i's folder, {i} and {n} standing for i and n ("": <Out>.shard-{i}).
	// The merge joins the n folders (each once) into Out. SetCommand sets it for the
	// commands whose shards do not write <Out>.shard-<i> (compare, derive).
	ShardDir string
	Binary   string // the attnscope executable ("attnscope" when empty)
	CPUs     int    // cores per shard (0: the scheduler's default)
	Memory   string // memory per shard, e.g. 8G (Slurm) or 8Gi (Kubernetes); "" default
	GPUs     int    // GPUs per shard
	Time     string // Slurm time limit, e.g. 02:00:00
	Part     string // Slurm partition
	Logs     string // Slurm log folder ("logs" when empty)
	// Kubernetes only.
	Image     string // container image holding attnscope
	Claim     string // PersistentVolumeClaim mounted at Mount (shared by shards and merge)
	Mount     string // where the claim is mounted ("/data" when empty)
	Retries   int    // backoffLimitPerIndex: how often a failed shard is retried
	Namespace string
}

var jobName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$`)

func (a *Array) check(k8s bool) error {
	if !jobName.MatchString(a.Name) {
		return fmt.Errorf("--name %q: lower-case letters, digits and '-' expected (at most 52, a Kubernetes name)", a.Name)
	}
	if a.Shards < 1 {
		return fmt.Errorf("--shards must be at least 1, got %d", a.Shards)
	}
	if a.Parallel < 0 {
		return fmt.Errorf("--parallel must not be negative, got %d", a.Parallel)
	}
	if len(a.Steps) == 0 {
		return errors.New("give the command to shard after -- (e.g. -- evaluate exp.yaml --out OUT), or --step command lines using {run} for the shard's run folder")
	}
	if a.Out == "" {
		return errors.New("--out (the merged run folder of the --step command lines) is required")
	}
	for _, s := range a.Steps {
		w, err := splitWords(s)
		if err != nil {
			return fmt.Errorf("--step %q: %w", s, err)
		}
		if len(w) == 0 || a.ShardDir == "" && !strings.Contains(s, "{run}") {
			return fmt.Errorf("--step %q: an attnscope command line naming the shard's run folder as {run} expected", s)
		}
		if strings.ContainsAny(s, "\n\r") {
			return fmt.Errorf("--step %q: a command line without line breaks expected", s)
		}
		if w[0] == "attnscope" {
			return fmt.Errorf("--step %q: leave out the leading \"attnscope\"", s)
		}
		if strings.Contains(s, "--shard") {
			return fmt.Errorf("--step %q: leave out --shard, which each shard adds", s)
		}
	}
	if k8s && a.Image == "" {
		return errors.New("--image (a container image holding attnscope) is required")
	}
	if a.CPUs < 0 || a.GPUs < 0 || a.Retries < 0 {
		return errors.New("--cpus, --gpus and --retries must not be negative")
	}
	return nil
}

// splitWords splits a command line into words like a POSIX shell: blanks separate,
// single quotes keep everything, double quotes keep all but \" and \\, a backslash
// quotes the next character.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quote := false, rune(0)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			if c == '"' {
				quote = 0
			} else if c == '\\' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\') {
				i++
				cur.WriteRune(rs[i])
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\':
			if i+1 == len(rs) {
				return nil, errors.New("a trailing backslash")
			}
			i++
			cur.WriteRune(rs[i])
			in = true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("an unclosed %c quote", quote)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// shellQuote quotes w for a POSIX shell, leaving $i and $run (the shard variables)
// expanded where {run} stood.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// shardDir is the ShardDir pattern with {n} replaced.
func (a *Array) shardDir() string {
	p := a.ShardDir
	if p == "" {
		p = a.Out + ".shard-{i}"
	}
	return strings.ReplaceAll(p, "{n}", strconv.Itoa(a.Shards))
}

// shardLines are the shell lines one shard runs, with $i its index.
func (a *Array) shardLines(bin string) []string {
	n := strconv.Itoa(a.Shards)
	parts := strings.Split(a.shardDir(), "{i}")
	for k := range parts {
		if parts[k] != "" {
			parts[k] = shellQuote(parts[k])
		}
	}
	lines := []string{`run=` + strings.Join(parts, `"$i"`)}
	for _, s := range a.Steps {
		words, _ := splitWords(s)
		var q []string
		for _, w := range words {
			parts := strings.Split(w, "{run}")
			for k := range parts {
				parts[k] = shellQuote(parts[k])
				if parts[k] == "''" {
					parts[k] = ""
				}
			}
			q = append(q, strings.Join(parts, `"$run"`))
		}
		lines = append(lines, shellQuote(bin)+" "+strings.Join(q, " ")+` --shard "$i/`+n+`"`)
	}
	return lines
}

// mergeLine is the shell line of the merge step.
func (a *Array) mergeLine(bin string) string {
	var srcs []string
	for i := range a.Shards {
		src := shellQuote(strings.ReplaceAll(a.shardDir(), "{i}", strconv.Itoa(i)))
		if !slices.Contains(srcs, src) {
			srcs = append(srcs, src)
		}
	}
	return shellQuote(bin) + " merge --out " + shellQuote(a.Out) + " " + strings.Join(srcs, " ")
}

func (a *Array) bin() string {
	if a.Binary == "" {
		return "attnscope"
	}
	return a.Binary
}

// SlurmFiles returns the files of a Slurm job: NAME.array.sbatch (the shards, an
// array job 0..n-1 whose task SLURM_ARRAY_TASK_ID runs --shard i/n), NAME.merge.sbatch
// and NAME.submit.sh, which submits the array, then the merge with
// --dependency=afterok on the whole array.
func SlurmFiles(a Array) (map[string]string, error) {
	if err := a.check(false); err != nil {
		return nil, err
	}
	logs := a.Logs
	if logs == "" {
		logs = "logs"
	}
	header := func(name string, array bool) string {
		var b strings.Builder
		b.WriteString("#!/bin/bash\n")
		fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", name)
		if array {
			spec := fmt.Sprintf("0-%d", a.Shards-1)
			if a.Parallel > 0 {
				spec += fmt.Sprintf("%%%d", a.Parallel)
			}
			fmt.Fprintf(&b, "#SBATCH --array=%s\n", spec)
			fmt.Fprintf(&b, "#SBATCH --output=%s/%s-%%A_%%a.out\n#SBATCH --error=%s/%s-%%A_%%a.err\n", logs, name, logs, name)
			if a.CPUs > 0 {
				fmt.Fprintf(&b, "#SBATCH --cpus-per-task=%d\n", a.CPUs)
			}
			if a.Memory != "" {
				fmt.Fprintf(&b, "#SBATCH --mem=%s\n", a.Memory)
			}
			if a.GPUs > 0 {
				fmt.Fprintf(&b, "#SBATCH --gpus-per-task=%d\n", a.GPUs)
			}
		} else {
			fmt.Fprintf(&b, "#SBATCH --output=%s/%s-%%j.out\n#SBATCH --error=%s/%s-%%j.err\n", logs, name, logs, name)
		}
		b.WriteString("#SBATCH --ntasks=1\n")
		if a.Time != "" {
			fmt.Fprintf(&b, "#SBATCH --time=%s\n", a.Time)
		}
		if a.Part != "" {
			fmt.Fprintf(&b, "#SBATCH --partition=%s\n", a.Part)
		}
		b.WriteString("set -euo pipefail\n")
		return b.String()
	}
	bin := a.bin()
	array := header(a.Name, true) +
		"# Shard i of " + strconv.Itoa(a.Shards) + ": a rerun (sbatch --array=i " + a.Name + ".array.sbatch) does only what is missing.\n" +
		"i=\"${SLURM_ARRAY_TASK_ID:?run this script with sbatch --array}\"\n" +
		strings.Join(a.shardLines(bin), "\n") + "\n"
	merge := header(a.Name+"-merge", false) + a.mergeLine(bin) + "\n"
	submit := "#!/bin/bash\n# Submits the shards as an array job, then the merge once every shard succeeded.\n" +
		"# Run it from the folder the paths are relative to (the jobs start there).\nset -euo pipefail\nd=\"$(dirname \"$0\")\"\n" +
		"mkdir -p " + shellQuote(logs) + "\n" +
		"array=$(sbatch --parsable \"$d\"/" + shellQuote(a.Name+".array.sbatch") + ")\n" +
		"array=${array%%;*}\n" +
		"merge=$(sbatch --parsable --dependency=afterok:\"$array\" \"$d\"/" + shellQuote(a.Name+".merge.sbatch") + ")\n" +
		"echo \"array job $array, merge job ${merge%%;*}\"\n"
	return map[string]string{
		a.Name + ".array.sbatch": array,
		a.Name + ".merge.sbatch": merge,
		a.Name + ".submit.sh":    submit,
	}, nil
}

// K8sFiles returns NAME.k8s.yaml: an Indexed Job (completionMode: Indexed, completions
// n, parallelism k, backoffLimitPerIndex) whose pod JOB_COMPLETION_INDEX runs --shard
// i/n, and NAME-merge, the merge Job, in a second file NAME.merge.k8s.yaml; and
// NAME.submit.sh, which applies the shards, waits for the Job to complete, then
// applies the merge. Shards and merge share the PersistentVolumeClaim Claim (or an
// S3 run folder).
func K8sFiles(a Array) (map[string]string, error) {
	if err := a.check(true); err != nil {
		return nil, err
	}
	mount := a.Mount
	if mount == "" {
		mount = "/data"
	}
	parallel := a.Parallel
	if parallel == 0 {
		parallel = a.Shards
	}
	bin := a.bin()
	script := "set -eu\ni=\"$JOB_COMPLETION_INDEX\"\n" + strings.Join(a.shardLines(bin), "\n") + "\n"
	shards := k8sJob(a, a.Name, mount, script, fmt.Sprintf(`  completionMode: Indexed
  completions: %d
  parallelism: %d
  backoffLimitPerIndex: %d
  maxFailedIndexes: %d
`, a.Shards, parallel, a.Retries, a.Shards))
	merge := k8sJob(a, a.Name+"-merge", mount, "set -eu\n"+a.mergeLine(bin)+"\n", "  backoffLimit: 2\n")
	ns := ""
	if a.Namespace != "" {
		ns = " -n " + shellQuote(a.Namespace)
	}
	submit := "#!/bin/bash\n# Applies the shards (an Indexed Job), waits until every index succeeded, then applies the merge.\nset -euo pipefail\nd=\"$(dirname \"$0\")\"\n" +
		"kubectl" + ns + " apply -f \"$d\"/" + shellQuote(a.Name+".k8s.yaml") + "\n" +
		"kubectl" + ns + " wait --for=condition=complete --timeout=-1s job/" + a.Name + "\n" +
		"kubectl" + ns + " apply -f \"$d\"/" + shellQuote(a.Name+".merge.k8s.yaml") + "\n"
	return map[string]string{
		a.Name + ".k8s.yaml":       shards,
		a.Name + ".merge.k8s.yaml": merge,
		a.Name + ".submit.sh":      submit,
	}, nil
}

// k8sJob writes a batch/v1 Job running script with sh -c.
func k8sJob(a Array, name, mount, script, spec string) string {
	var b strings.Builder
	b.WriteString("apiVersion: batch/v1\nkind: Job\nmetadata:\n")
	fmt.Fprintf(&b, "  name: %s\n", name)
	if a.Namespace != "" {
		fmt.Fprintf(&b, "  namespace: %s\n", yamlString(a.Namespace))
	}
	fmt.Fprintf(&b, "  labels:\n    app.kubernetes.io/name: attnscope\n    attnscope/job: %s\n", a.Name)
	b.WriteString("spec:\n")
	b.WriteString(spec)
	b.WriteString("  template:\n    metadata:\n")
	fmt.Fprintf(&b, "      labels:\n        app.kubernetes.io/name: attnscope\n        attnscope/job: %s\n", a.Name)
	b.WriteString("    spec:\n      restartPolicy: Never\n      containers:\n")
	b.WriteString("        - name: attnscope\n")
	fmt.Fprintf(&b, "          image: %s\n", yamlString(a.Image))
	fmt.Fprintf(&b, "          workingDir: %s\n", yamlString(mount))
	b.WriteString("          command: [\"/bin/sh\", \"-c\"]\n          args:\n            - |\n")
	for _, l := range strings.Split(strings.TrimRight(script, "\n"), "\n") {
		b.WriteString("              " + l + "\n")
	}
	if a.CPUs > 0 || a.Memory != "" || a.GPUs > 0 {
		b.WriteString("          resources:\n            requests:\n")
		res := ""
		if a.CPUs > 0 {
			res += fmt.Sprintf("              cpu: %q\n", strconv.Itoa(a.CPUs))
		}
		if a.Memory != "" {
			res += fmt.Sprintf("              memory: %s\n", yamlString(a.Memory))
		}
		if a.GPUs > 0 {
			res += fmt.Sprintf("              nvidia.com/gpu: %q\n", strconv.Itoa(a.GPUs))
		}
		b.WriteString(res)
		b.WriteString("            limits:\n" + res)
	}
	if a.Claim != "" {
		fmt.Fprintf(&b, "          volumeMounts:\n            - name: runs\n              mountPath: %s\n", yamlString(mount))
		fmt.Fprintf(&b, "      volumes:\n        - name: runs\n          persistentVolumeClaim:\n            claimName: %s\n", yamlString(a.Claim))
	}
	return b.String()
}

// yamlString quotes s as a YAML double-quoted scalar (JSON string syntax is valid YAML).
func yamlString(s string) string { return strconv.Quote(s) }

// WriteFiles writes files into dir (created), each atomically, the .sh ones executable.
func WriteFiles(dir string, files map[string]string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := atomicfile.WriteFile(p, []byte(text)); err != nil {
			return nil, err
		}
		if strings.HasSuffix(name, ".sh") || strings.HasSuffix(name, ".sbatch") {
			if err := os.Chmod(p, 0o755); err != nil {
				return nil, err
			}
		}
		names = append(names, p)
	}
	return names, nil
}
