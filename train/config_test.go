package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const defaultConfig = "../configs/attentionspan/default-addition.yaml"

func TestDefaultConfigLoads(t *testing.T) {
	e, err := LoadExperiment(defaultConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Training == nil || e.Training.TrainDataset.Generator != "LongAdditionGenerator" || e.Evaluation.Dataset2.NumSamples <= 0 {
		t.Fatalf("unexpected config %+v", e)
	}
	// Every dataset of the config builds a generator.
	for _, d := range []*DatasetCfg{&e.Training.TrainDataset, e.Training.ValDataset, e.Evaluation.Dataset1, e.Evaluation.Dataset2} {
		dd := *d
		dd.NumSamples = 2
		if _, err := Samples(&dd, Tokenizer(), true); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOverrides(t *testing.T) {
	e, err := LoadExperiment(defaultConfig, []string{
		"training.batch_size=8", "training.learning_rate=1e-3",
		"evaluation.dataset2.generator_parameters.length=[3,5]", "+training.epochs=2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Training.BatchSize != 8 || e.Training.LearningRate != 1e-3 || e.Training.Epochs != 2 {
		t.Fatalf("overrides not applied: %+v", e.Training)
	}
	if got := e.Evaluation.Dataset2.GeneratorParameters["length"]; len(got.([]any)) != 2 {
		t.Fatalf("length override: %v", got)
	}
	if _, err := LoadExperiment(defaultConfig, []string{"training=null"}); err == nil || !strings.Contains(err.Error(), "no model to evaluate") {
		t.Fatalf("training=null without a checkpoint: %v", err)
	}
	e, err = LoadExperiment(defaultConfig, []string{"training=null", "+model.load_from_checkpoint=true", "+model.checkpoint_filepath=models/default"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Training != nil || !e.Model.LoadFromCheckpoint {
		t.Fatalf("training=null not applied: %+v", e)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		overrides []string
		want      string
	}{
		{[]string{"training.batch_sise=3"}, "training.batch_sise: key does not exist"},
		{[]string{"trainin.steps=3"}, "key trainin does not exist"},
		{[]string{"training.batch_size"}, "expected key=value"},
		{[]string{"training.batch_size=0"}, "training.batch_size must be positive"},
		{[]string{"model.n_head=5"}, "not a multiple"},
		{[]string{"training.batch_size=many"}, "batch_size"},
		{[]string{"+training.foo=1"}, "unknown field"},
		{[]string{"training.steps=abc"}, `override training.steps: "abc" is not a valid value: an integer expected`},
		{[]string{"training.batch_size=4", "training.learning_rate=fast"}, `override training.learning_rate: "fast" is not a valid value: a number expected`},
		{[]string{"+training.batch_size=3"}, "override +training.batch_size: key already exists in the config"},
	} {
		_, err := LoadExperiment(defaultConfig, tc.overrides)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to mention %q", tc.overrides, err, tc.want)
		}
	}
	if e, err := LoadExperiment(defaultConfig, []string{"++training.batch_size=3", "++training.epochs=2"}); err != nil || e.Training.BatchSize != 3 {
		t.Errorf("++ replaces an existing key and adds a missing one: %v", err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nmodel:\n  n_layer: 1\n  n_heads: 2\n"), 0o644)
	if _, err := LoadExperiment(bad, nil); err == nil || !strings.Contains(err.Error(), "n_heads") || !strings.Contains(err.Error(), "4") {
		t.Fatalf("unknown key: %v (want the key and its line)", err)
	}
	// An unknown generator or parameter and an impossible range are reported with
	// the config file and the dataset's key.
	for _, tc := range []struct{ override, want string }{
		{"training.train_dataset.generator=NoSuchGenerator", "training.train_dataset: unknown generator"},
		{"training.train_dataset.generator_parameters.length=[5,1]", "length (5,1) is empty"},
		{"+evaluation.dataset2.generator_parameters.lenght=[1,2]", `evaluation.dataset2: LongAdditionGenerator: unknown parameter "lenght"`},
	} {
		_, err := LoadExperiment(defaultConfig, []string{tc.override})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "default-addition.yaml") {
			t.Errorf("%s: %v, want the file and %q", tc.override, err, tc.want)
		}
	}
}

// Every shipped config parses strictly, builds its generators, and its samples
// fit the model's n_positions.
func TestShippedConfigs(t *testing.T) {
	paths, _ := filepath.Glob("../configs/attentionspan/*.yaml")
	if len(paths) < 6 {
		t.Fatalf("found %d configs", len(paths))
	}
	for _, p := range paths {
		e, err := LoadExperiment(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		sets := []*DatasetCfg{&e.Training.TrainDataset, e.Training.ValDataset, e.Evaluation.Dataset1, e.Evaluation.Dataset2}
		for _, d := range sets {
			dd := *d
			dd.NumSamples = 50
			ss, err := Samples(&dd, Tokenizer(), true)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			for _, s := range ss {
				if len(s.InputIDs) > e.Model.NPositions {
					t.Fatalf("%s: %s sample %q has %d tokens > n_positions %d", p, d.Generator, s.Text, len(s.InputIDs), e.Model.NPositions)
				}
			}
		}
	}
}

// Smoke test: every shipped config trains for two steps (tiny batches, its own
// generators, its own architecture) and the loss is finite.
func TestShippedConfigsTrain(t *testing.T) {
	paths, _ := filepath.Glob("../configs/attentionspan/*.yaml")
	be, err := Backend("")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			e, err := LoadExperiment(p, []string{"training.steps=2", "training.batch_size=4", "training.warmup_steps=1",
				"training.train_dataset.num_samples=8", "training.val_dataset.num_samples=4", "training.val_every=2", "training.log_every=1",
				"training.save_checkpoint=false", "training.checkpoint_filepath=" + t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			res, err := RunTraining(context.Background(), e, RunOptions{Backend: be})
			if err != nil {
				t.Fatal(err)
			}
			if res.Steps != 2 || len(res.Log) == 0 {
				t.Fatalf("trained %d steps with %d log records, want 2 steps", res.Steps, len(res.Log))
			}
			for _, r := range res.Log {
				if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) || r.Loss <= 0 {
					t.Fatalf("step %d: train_loss %v", r.Step, r.Loss)
				}
			}
		})
	}
}
