package jobs

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// diagnoseSubs are the diagnose subcommands a job array may shard.
var diagnoseSubs = []string{"jacobian", "layernorm", "perturb", "confusion"}

// ShardedCommands names the command lines SetCommand accepts.
const ShardedCommands = "capture, derive, compare, evaluate, diagnose " + "jacobian|layernorm|perturb|confusion"

// SetCommand makes argv, one attnscope command line as words (without "attnscope"
// and --shard, as a researcher types it after `attnscope jobs slurm ... --`), the step
// every shard runs, and sets Out and ShardDir from the command's output:
//
//   - capture, evaluate and diagnose <sub> write --out OUT (or -o OUT): shard i
//     writes OUT.shard-<i> instead, and `merge --out OUT` joins the n folders;
//   - derive RUN: every shard derives its own samples in RUN (one manifest per shard,
//     atomic files), and `merge --out RUN RUN` gathers the whole run's metrics table;
//   - compare --config C: shard i writes OUT/shard-<i>-of-<n> by itself, OUT being
//     the config's output_comparison_folder, which compareOut returns (as the
//     comparator resolves it); `merge --out OUT` joins the n shard folders.
//
// When Out is already set it must name the same folder.
func (a *Array) SetCommand(argv []string, compareOut func(config string) (string, error)) error {
	if len(a.Steps) > 0 {
		return errors.New("give either --step command lines or one command after --, not both")
	}
	if len(argv) == 0 {
		return fmt.Errorf("give the command to shard after --, one of %s", ShardedCommands)
	}
	for _, w := range argv {
		switch {
		case w == "--shard" || strings.HasPrefix(w, "--shard="):
			return errors.New("leave out --shard from the command after --: each shard adds its own")
		case strings.Contains(w, "{run}"):
			return fmt.Errorf("the command after -- contains %q: {run} is kept for --step command lines", w)
		case strings.ContainsAny(w, "\n\r"):
			return fmt.Errorf("the command after -- has an argument with a line break (%q): not supported in job scripts", w)
		}
	}
	words := slices.Clone(argv)
	var out, shardDir string
	var err error
	switch cmd := words[0]; {
	case cmd == "attnscope":
		return errors.New("leave out the leading \"attnscope\" of the command after --")
	case cmd == "capture" || cmd == "evaluate":
		out, err = replaceOut(words, cmd)
	case cmd == "diagnose":
		if len(words) < 2 || !slices.Contains(diagnoseSubs, words[1]) {
			return fmt.Errorf("diagnose: one of the subcommands %s expected after it in the command after --", strings.Join(diagnoseSubs, ", "))
		}
		out, err = replaceOut(words, "diagnose "+words[1])
	case cmd == "derive":
		out, err = replaceDeriveRun(words)
		shardDir = out
	case cmd == "compare":
		out, err = compareFolder(words, compareOut)
		if out != "" {
			shardDir = path.Join(out, "shard-{i}-of-{n}")
		}
	case cmd == "run":
		return fmt.Errorf("run has no --shard: shard its long steps (%s) as arrays of their own", ShardedCommands)
	default:
		return fmt.Errorf("%q has no --shard: the command after -- must be one of %s", cmd, ShardedCommands)
	}
	if err != nil {
		return err
	}
	if a.Out != "" && a.Out != out {
		return fmt.Errorf("--out %q differs from the command's output folder %q: leave out --out, the command names it", a.Out, out)
	}
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = quoteStep(w)
	}
	a.Out, a.ShardDir, a.Steps = out, shardDir, []string{strings.Join(q, " ")}
	return nil
}

// quoteStep quotes w for a --step command line (splitWords reads it back), keeping
// {run} a separate unquoted part.
func quoteStep(w string) string {
	parts := strings.Split(w, "{run}")
	for k, p := range parts {
		if p != "" {
			parts[k] = shellQuote(p)
		}
	}
	return strings.Join(parts, "{run}")
}

// replaceOut replaces the value of --out/-o in words by {run} and returns it.
func replaceOut(words []string, cmd string) (string, error) {
	out, at := "", -1
	for i := 1; i < len(words); i++ {
		w := words[i]
		var v string
		switch {
		case w == "--out" || w == "-o":
			if i+1 == len(words) {
				return "", fmt.Errorf("%s: %s needs a folder", cmd, w)
			}
			i++
			v, words[i] = words[i], "{run}"
		case strings.HasPrefix(w, "--out="):
			v, words[i] = w[len("--out="):], "--out={run}"
		case strings.HasPrefix(w, "-o") && !strings.HasPrefix(w, "--"):
			v, words[i] = strings.TrimPrefix(w[2:], "="), "-o{run}"
		default:
			continue
		}
		if at >= 0 {
			return "", fmt.Errorf("%s: give --out once", cmd)
		}
		out, at = v, i
	}
	if out == "" {
		return "", fmt.Errorf("%s: --out FOLDER is required (each shard writes FOLDER.shard-<i>, merged into FOLDER)", cmd)
	}
	return out, nil
}

// deriveValueFlags are derive's flags that take a value as the next word.
var deriveValueFlags = []string{"--config", "-c", "--pass", "--workers", "-j"}

// replaceDeriveRun replaces derive's RUN argument by {run} and returns it.
func replaceDeriveRun(words []string) (string, error) {
	var pos []int
	for i := 1; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "--list":
			return "", errors.New("derive --list has nothing to shard")
		case slices.Contains(deriveValueFlags, w):
			i++
		case !strings.HasPrefix(w, "-") || w == "-":
			pos = append(pos, i)
		}
	}
	if len(pos) != 1 {
		return "", errors.New("derive: one RUN folder expected (derive --config C RUN)")
	}
	run := words[pos[0]]
	words[pos[0]] = "{run}"
	return run, nil
}

// compareFolder returns the output folder of compare's --config.
func compareFolder(words []string, compareOut func(string) (string, error)) (string, error) {
	config := ""
	for i := 1; i < len(words); i++ {
		switch w := words[i]; {
		case w == "--list":
			return "", errors.New("compare --list has nothing to shard")
		case w == "--config" && i+1 < len(words):
			config = words[i+1]
		case strings.HasPrefix(w, "--config="):
			config = w[len("--config="):]
		}
	}
	if config == "" {
		return "", errors.New("compare: --config FILE is required")
	}
	if compareOut == nil {
		return "", errors.New("compare: no reader of its --config given")
	}
	out, err := compareOut(config)
	if err != nil {
		return "", err
	}
	if out == "" {
		return "", fmt.Errorf("%s: output_comparison_folder is empty", config)
	}
	return out, nil
}
