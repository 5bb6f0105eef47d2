package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/tensor"
)

// RunOutputDir holds the run-level derived outputs: arrays that belong to the whole
// run rather than to one sample (a similarity matrix over every sample's tokens, a
// head-matching summary over samples, a diagnostic run's spectra and histograms).
// Each is a folder RUN/run-outputs/<name>/ with pass.json (the same PassSettings,
// declared axes included, as a derive pass) and output.npy.
const RunOutputDir = "run-outputs"

// runOutputFile is the array of a run-level output inside its folder.
const runOutputFile = "output.npy"

// RunOutputInfo is a run-level output with its recorded settings and shape.
type RunOutputInfo struct {
	Name string
	PassSettings
	Shape []int
}

// RunOutputPath is RUN/run-outputs/<name>/output.npy.
func (r *Run) RunOutputPath(name string) string {
	return filepath.Join(r.dir, RunOutputDir, name, runOutputFile)
}

// WriteRunOutput stores the run-level output name, t with the settings s (whose Axes
// must describe t's shape), replacing an older output of that name. The folder is
// built beside its final place and renamed into it, so a reader never sees settings
// without their array or a half-written array.
func (r *Run) WriteRunOutput(name string, s PassSettings, t *tensor.Tensor) error {
	if err := CheckSampleID(name); err != nil {
		return fmt.Errorf("run output name: %w", err)
	}
	if err := t.Check(); err != nil {
		return fmt.Errorf("run output %q: %w", name, err)
	}
	if len(s.Axes) == 0 {
		return fmt.Errorf("run output %q: no axes declared", name)
	}
	if err := CheckAxes(s.Axes, t.Shape); err != nil {
		return fmt.Errorf("run output %q: %w", name, err)
	}
	base := filepath.Join(r.dir, RunOutputDir)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", base, err)
	}
	tmp, err := os.MkdirTemp(base, "."+name+".partial-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	settings, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("run output %q: record settings: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, PassFile), append(settings, '\n'), 0o644); err != nil {
		return err
	}
	if err := checkpoint.WriteNpyFile(filepath.Join(tmp, runOutputFile), t.Shape, t.Data); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	dest := filepath.Join(base, name)
	if _, err := os.Stat(dest); err == nil {
		old, err := os.MkdirTemp(base, "."+name+".old-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(old)
		if err := os.Rename(dest, filepath.Join(old, name)); err != nil {
			return fmt.Errorf("replace run output %q: %w", name, err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("store run output %q: %w", name, err)
	}
	return nil
}

// RunOutputs lists the run's run-level outputs, sorted by name, with their settings
// and shapes (the per-sample ones are DerivedPasses). Folders being written (names
// starting with '.') are skipped.
func (r *Run) RunOutputs() ([]RunOutputInfo, error) {
	ents, err := os.ReadDir(filepath.Join(r.dir, RunOutputDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []RunOutputInfo
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := r.runOutputInfo(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func (r *Run) runOutputInfo(name string) (RunOutputInfo, error) {
	info := RunOutputInfo{Name: name}
	dir := filepath.Join(r.dir, RunOutputDir, name)
	b, err := os.ReadFile(filepath.Join(dir, PassFile))
	if err != nil {
		return info, fmt.Errorf("run output %q: %w", name, err)
	}
	if err := json.Unmarshal(b, &info.PassSettings); err != nil {
		return info, fmt.Errorf("run output %q: read %s: %w", name, filepath.Join(dir, PassFile), err)
	}
	f, err := os.Open(filepath.Join(dir, runOutputFile))
	if err != nil {
		return info, fmt.Errorf("run output %q: %w", name, err)
	}
	defer f.Close()
	h, err := checkpoint.ReadNpyHeader(f)
	if err != nil {
		return info, fmt.Errorf("run output %q: read %s: %w", name, f.Name(), err)
	}
	info.Shape = h.Shape
	if err := CheckAxes(info.Axes, info.Shape); err != nil {
		return info, fmt.Errorf("run output %q (%s): %w", name, dir, err)
	}
	return info, nil
}

// RunOutput reads the run-level output name with its settings; an error listing the
// run's outputs when it has none of that name.
func (r *Run) RunOutput(name string) (RunOutputInfo, *tensor.Tensor, error) {
	if err := CheckSampleID(name); err != nil {
		return RunOutputInfo{}, nil, fmt.Errorf("run output name: %w", err)
	}
	if _, err := os.Stat(filepath.Join(r.dir, RunOutputDir, name)); errors.Is(err, fs.ErrNotExist) {
		all, _ := r.RunOutputs()
		names := make([]string, len(all))
		for i, o := range all {
			names[i] = o.Name
		}
		return RunOutputInfo{}, nil, fmt.Errorf("run %s has no run output %q (run outputs: %s): %w", r.dir, name, cmpOrNone(strings.Join(names, ", ")), fs.ErrNotExist)
	}
	info, err := r.runOutputInfo(name)
	if err != nil {
		return info, nil, err
	}
	a, err := checkpoint.ReadNpyFile(r.RunOutputPath(name))
	if err != nil {
		return info, nil, err
	}
	t := &tensor.Tensor{Shape: a.Shape, Data: a.Float64s()}
	if err := CheckAxes(info.Axes, t.Shape); err != nil {
		return info, nil, fmt.Errorf("run output %q: %w", name, err)
	}
	return info, t, nil
}

func cmpOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
