package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

func TestImportCommand(t *testing.T) {
	ref := refdata.Path(t, "models", "tiny-gpt2")
	tmp := t.TempDir()
	good := filepath.Join(tmp, "good.npy")
	checkpoint.WriteNpyFile(good, []int{1, 2, 2}, []float32{1, 0, 0.5, 0.5})
	bad := filepath.Join(tmp, "bad.npy")
	checkpoint.WriteNpyFile(bad, []int{2, 3}, make([]float32, 6))
	out := filepath.Join(tmp, "run")
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no out", []string{"import", good}, exitUsage},
		{"no files", []string{"import", "--out", out}, exitUsage},
		{"bad rank", []string{"import", "--out", filepath.Join(tmp, "bad-run"), bad}, exitError},
		{"no case for the npy", []string{"import", "--out", out, "--tokens-from", filepath.Join(ref, "reference.json"), filepath.Join(ref, "reference.safetensors"), good}, exitError},
		{"npy", []string{"import", "--out", out, good}, exitOK},
		{"reference", []string{"import", "--out", out, "--tokens-from", filepath.Join(ref, "reference.json"), filepath.Join(ref, "reference.safetensors")}, exitOK},
		{"rerun", []string{"import", "--out", out, "--tokens-from", filepath.Join(ref, "reference.json"), filepath.Join(ref, "reference.safetensors")}, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
	r, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := r.Samples()
	if len(ids) != 9 || ids[0] != "good" {
		t.Errorf("samples %v", ids)
	}
	s, err := r.Sample("reference.case0.attentions")
	if err != nil || len(s.Tokens) == 0 || s.Text == "" {
		t.Errorf("reference sample without tokens: %+v %v", s, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "bad-run", "samples", "bad")); err == nil {
		t.Error("a rejected input left a sample folder")
	}
}
