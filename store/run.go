// Package store reads and writes attnscope run folders: the provenance of a run,
// one folder per sample with its text, tokens and attention (and optionally hidden
// states) in safetensors, derived results and metric tables.
//
// Layout of a run folder RUN:
//
//	RUN/run.json                           provenance (Meta)
//	RUN/samples/<id>/sample.json           text, token ids, tokens, offsets, generation (Sample); written last
//	RUN/samples/<id>/attention.safetensors blocks.<l>.attn.pattern, [heads, query, key], F32 or F16
//	RUN/samples/<id>/hidden.safetensors    embed, blocks.<l>.hook_resid_post, final_norm, [tokens, width] (optional)
//	RUN/samples/<id>/qkv.safetensors       blocks.<l>.attn.hook_q|hook_k|hook_v, [heads, tokens, head_dim] (optional)
//	RUN/derived/<pass>/<id>.npy            outputs of analysis passes (package derive), float64 .npy
//	RUN/derived/<pass>/<id>.metrics.csv    the sample's metric rows of the pass, gathered into the table
//	RUN/derived/<pass>/pass.json           the pass's function, input, kwargs and output axes (PassSettings)
//	RUN/metrics.csv, RUN/metrics.parquet   the run's metrics table (GatherMetrics)
//
// Everything on disk about a run goes through this package: Sample, NumLayers,
// AttentionLayer and Attention read captured data as *tensor.Tensor ([head, query,
// key] per layer, [layer, head, query, key] whole); PreparePass, WriteDerived,
// Derived, HasDerived, DerivedPasses and Pass write and read derived outputs;
// GatherMetrics and Metrics the metrics table.
//
// Derived outputs describe themselves: every derive function declares the axes of its
// output (Axis: a name such as layer, head, query, key, line, unit or point, and for
// axes of fixed length the names of their entries, e.g. head_collapse's criteria or
// the columns of a list of records), and pass.json records them. A reader draws or
// serves any output from DerivedPasses (the axes) and Derived (the values) without
// knowing the function: ticks of query/key axes are the sample's tokens, of layer and
// head axes L0.../H0..., of unit axes "L0 H3", of labelled axes their labels.
// Every file is written atomically (temporary file, then rename). A sample is
// finished when its sample.json exists: the tensors files are committed before it,
// so an interrupted capture never leaves a sample that looks whole.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// File names inside a run folder.
const (
	RunFile       = "run.json"
	SamplesDir    = "samples"
	SampleFile    = "sample.json"
	AttentionFile = "attention.safetensors"
	HiddenFile    = "hidden.safetensors"
	QKVFile       = "qkv.safetensors"
	QKFile        = "qk.safetensors" // capture --store qk: queries, keys, log-sum-exps
	DerivedDir    = "derived"
	PassFile      = "pass.json"
)

// FormatVersion is the version of the run folder layout written by this package.
const FormatVersion = 1

// ErrNotCaptured is returned (wrapped) when a run does not hold the data asked for,
// such as hidden states of a run captured without --hidden.
var ErrNotCaptured = errors.New("not captured")

// Meta is the provenance of a run, stored in run.json.
type Meta struct {
	Format  int    `json:"format"`  // FormatVersion
	Tool    string `json:"tool"`    // "attnscope"
	Version string `json:"version"` // tool version (internal/buildinfo)
	// Command is the command line of this invocation (the last of Commands after Open).
	Command []string `json:"-"`
	// Commands holds every command line that wrote to the run, oldest first: the one that
	// created it, then each resume or append (run.json "command", a list of lists; a
	// run.json of an older version holding one list is read as one command line).
	Commands CommandLines `json:"command"`
	Kind     string       `json:"kind"` // "capture" or "import"

	Model *ModelInfo `json:"model,omitempty"` // captured runs: the model folder

	// DType is the storage type of attention and hidden tensors: "float32" or "float16".
	DType string `json:"dtype"`
	// ComputeDType is the type the model computed in ("float32").
	ComputeDType string `json:"compute_dtype,omitempty"`
	// AttentionPrecision is the type attention scores, softmax and pattern·v were
	// computed in: "float32", or "float64" (rounded once to float32; capture
	// --attention-precision); "" in runs written before it was recorded (float32).
	AttentionPrecision string `json:"attention_precision,omitempty"`
	// AttentionImplementation names how attention was computed, e.g.
	// "eager: softmax(QK^T/sqrt(d) + causal mask)".
	AttentionImplementation string `json:"attention_implementation,omitempty"`
	// Backend is the compute backend ("go", "xla:cuda", ...).
	Backend string `json:"backend,omitempty"`
	Hidden  bool   `json:"hidden"`        // hidden.safetensors captured
	QKV     bool   `json:"qkv,omitempty"` // qkv.safetensors captured
	// Store is "qk" when samples hold qk.safetensors (queries, keys, log-sum-exps)
	// instead of attention.safetensors; "" for materialised attention.
	Store      string              `json:"store,omitempty"`
	Generation *GenerationSettings `json:"generation,omitempty"` // nil: plain forward passes
	Inputs     []string            `json:"inputs,omitempty"`     // input texts' files or imported files
	// Truncate is capture's --truncate: "left" or "right" when inputs longer than the
	// context were cut (each such sample's sample.json says how), "" when refused.
	Truncate string `json:"truncate,omitempty"`

	StartTime time.Time  `json:"start_time"`
	EndTime   *time.Time `json:"end_time,omitempty"` // nil while the run is being written
	// CompiledGraphs is how many computation graphs the model compiled (captured runs).
	CompiledGraphs int `json:"compiled_graphs,omitempty"`
	// Intervention is the intervention file the forward passes applied (capture
	// --intervene); nil for a clean run.
	Intervention *InterventionInfo `json:"intervention,omitempty"`
}

// InterventionInfo records an intervention file verbatim with its SHA-256.
type InterventionInfo struct {
	File   string `json:"file"`
	Name   string `json:"name,omitempty"`
	SHA256 string `json:"sha256"`
	YAML   string `json:"yaml"`
}

// ModelInfo identifies the model a run was captured from.
type ModelInfo struct {
	Dir       string          `json:"dir"`        // model folder as given
	ModelType string          `json:"model_type"` // config.json model_type
	Files     []FileHash      `json:"files"`      // weight and tokenizer files with their sha256
	Config    json.RawMessage `json:"config"`     // config.json verbatim
}

// FileHash is a file of the model folder with its size and SHA-256.
type FileHash struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// GenerationSettings are the settings of a capture that generated text.
type GenerationSettings struct {
	MaxNewTokens   int     `json:"max_new_tokens"`
	DoSample       bool    `json:"do_sample"`
	Temperature    float64 `json:"temperature,omitempty"`
	TopK           int     `json:"top_k,omitempty"`
	TopP           float64 `json:"top_p,omitempty"`
	Seed           int64   `json:"seed"`  // seed of try 0; try i uses Seed+i
	Tries          int     `json:"tries"` // samples per prompt
	MaxTimeSeconds float64 `json:"max_time_seconds,omitempty"`
	EOS            []int   `json:"eos,omitempty"`
}

// Run is an open run folder.
type Run struct {
	dir  string
	Meta Meta
	// remote is the bucket of a run opened from object storage (OpenRead): the
	// files its local folder leaves out are read from there; nil for a local run.
	remote *remoteRun
}

// Create makes a new run folder at dir (created if needed) and writes its run.json.
// It fails if dir already holds a run.
func Create(dir string, meta Meta) (*Run, error) {
	if _, err := os.Stat(filepath.Join(dir, RunFile)); err == nil {
		return nil, fmt.Errorf("create run %s: the folder already holds a run (%s)", dir, RunFile)
	}
	if err := os.MkdirAll(filepath.Join(dir, SamplesDir), 0o755); err != nil {
		return nil, fmt.Errorf("create run %s: %w", dir, err)
	}
	if meta.Format == 0 {
		meta.Format = FormatVersion
	}
	if meta.Tool == "" {
		meta.Tool = "attnscope"
	}
	if len(meta.Commands) == 0 && len(meta.Command) > 0 {
		meta.Commands = CommandLines{meta.Command}
	}
	r := &Run{dir: dir, Meta: meta}
	if err := r.WriteMeta(); err != nil {
		return nil, err
	}
	return r, nil
}

// Open opens an existing run folder and reads its run.json.
func Open(dir string) (*Run, error) {
	path := filepath.Join(dir, RunFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open run %s: no %s: not a run folder", dir, RunFile)
		}
		return nil, fmt.Errorf("open run %s: %w", dir, err)
	}
	r := &Run{dir: dir}
	if err := json.Unmarshal(b, &r.Meta); err != nil {
		return nil, fmt.Errorf("read %s: invalid JSON: %w", path, err)
	}
	if r.Meta.Format > FormatVersion {
		return nil, fmt.Errorf("read %s: format %d is newer than this tool reads (%d)", path, r.Meta.Format, FormatVersion)
	}
	if n := len(r.Meta.Commands); n > 0 {
		r.Meta.Command = r.Meta.Commands[n-1]
	}
	return r, nil
}

// WriteMeta rewrites run.json from r.Meta (atomically).
func (r *Run) WriteMeta() error {
	b, err := json.MarshalIndent(r.Meta, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(r.dir, RunFile), err)
	}
	return atomicfile.WriteFile(filepath.Join(r.dir, RunFile), append(b, '\n'))
}

// Dir is the run's folder.
func (r *Run) Dir() string { return r.dir }

// SampleDir is the folder of sample id.
func (r *Run) SampleDir(id string) string { return filepath.Join(r.dir, SamplesDir, id) }

// AttentionPath is the attention file of sample id.
func (r *Run) AttentionPath(id string) string {
	return filepath.Join(r.SampleDir(id), AttentionFile)
}

// HiddenPath is the hidden-states file of sample id.
func (r *Run) HiddenPath(id string) string { return filepath.Join(r.SampleDir(id), HiddenFile) }

// QKVPath is the queries/keys/values file of sample id.
func (r *Run) QKVPath(id string) string { return filepath.Join(r.SampleDir(id), QKVFile) }

// QKPath is the queries/keys/log-sum-exps file of sample id (capture --store qk).
func (r *Run) QKPath(id string) string { return filepath.Join(r.SampleDir(id), QKFile) }

// Provenance returns run.json decoded as a generic map (every field, also ones this
// version does not know), for display.
func (r *Run) Provenance() (map[string]any, error) {
	path := filepath.Join(r.dir, RunFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: invalid JSON: %w", path, err)
	}
	return m, nil
}

// Finished reports whether sample id is complete (its sample.json exists).
func (r *Run) Finished(id string) bool {
	st, err := os.Stat(filepath.Join(r.SampleDir(id), SampleFile))
	return err == nil && st.Mode().IsRegular()
}

// Samples returns the ids of the finished samples, sorted.
func (r *Run) Samples() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(r.dir, SamplesDir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return []string{}, nil
		}
		return nil, fmt.Errorf("list samples of %s: %w", r.dir, err)
	}
	ids := []string{}
	for _, e := range entries {
		if e.IsDir() && r.Finished(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// CheckSampleID reports whether id can name a sample folder: non-empty, at most 200
// bytes, of letters, digits and . _ + - =, not starting with a dot.
func CheckSampleID(id string) error {
	if id == "" || len(id) > 200 || strings.HasPrefix(id, ".") {
		return fmt.Errorf("sample id %q: a non-empty name of at most 200 characters not starting with '.' expected", id)
	}
	for _, c := range id {
		if !sampleIDChar(c) {
			return fmt.Errorf("sample id %q: character %q not allowed (letters, digits and . _ + - = expected)", id, c)
		}
	}
	return nil
}

func sampleIDChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '+' || c == '='
}

// SampleID turns a name (such as a file name) into a valid sample id, replacing
// other characters with '_'.
func SampleID(name string) string {
	var b strings.Builder
	for _, c := range name {
		if sampleIDChar(c) {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	id := strings.TrimLeft(b.String(), ".")
	if id == "" {
		id = "_"
	}
	if len(id) > 200 {
		id = id[:200]
	}
	return id
}
