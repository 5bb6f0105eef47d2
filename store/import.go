package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/buildinfo"
)

// ImportOptions configure Import.
type ImportOptions struct {
	// TokensFrom is an optional JSON file with the samples' token information:
	// either {"cases": [{text, ids, tokens, offsets}, ...]} (the reference.json of a
	// model folder: case i goes to the tensor named case<i>.*, else to the i-th
	// imported sample), or {"<sample id>": {text, ids, tokens, offsets,
	// prompt_length}, ...}.
	TokensFrom string
	// FP16 stores the attention as float16.
	FP16 bool
	// Command is the command line recorded in run.json.
	Command []string
	// Progress, when set, is called after each sample.
	Progress func(id string, skipped bool)
}

// ImportSummary counts what Import did.
type ImportSummary struct {
	Imported, Skipped int
	Samples           []string // ids of the imported or already present samples
}

// source is one attention tensor to import: where it is, its shape and how to read
// one layer of it.
type source struct {
	id     string
	file   string // file path, for errors
	what   string // file path plus array/tensor name, for errors and Sample.Source
	tensor string // tensor or array name inside the file ("" for .npy)
	shape  []int  // [L, H, N, N] (rank-3 inputs get H = 1)
	layer  func(l int) ([]float32, error)
	close  func()
	meta   *Sample // token information found beside the tensor (followup metadata)
	ids    []int   // token ids stored beside the tensor (safetensors <x>.input_ids)
}

// Import brings attention computed by other tools into the run folder out (created,
// or added to when it holds an import run): .npy, .npz and .safetensors files of
// shape [L, H, N, N] or [L, N, N] (one head), and followup-attention output folders
// (att_tensor/<stem>.npy + metadata/<stem>.json). Every tensor is checked (rank,
// square, finite, non-negative) layer by layer as it is copied; a sample appears
// only once complete, and samples already in the run are skipped.
func Import(ctx context.Context, out string, paths []string, opts ImportOptions) (*ImportSummary, error) {
	if len(paths) == 0 {
		return nil, errors.New("import: no input files")
	}
	var tokens *tokenTable
	if opts.TokensFrom != "" {
		t, err := readTokenTable(opts.TokensFrom)
		if err != nil {
			return nil, err
		}
		tokens = t
	}
	// Discover every source first, so that a bad path fails before anything is written.
	var sources []*source
	defer func() {
		for _, s := range sources {
			if s.close != nil {
				s.close()
			}
		}
	}()
	for _, p := range paths {
		found, err := discover(p)
		sources = append(sources, found...)
		if err != nil {
			return nil, err
		}
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("import: no attention tensors found in %s", strings.Join(paths, ", "))
	}
	seen := map[string]string{}
	for _, s := range sources {
		if prev, dup := seen[s.id]; dup {
			return nil, fmt.Errorf("import: %s and %s would both be sample %q", prev, s.what, s.id)
		}
		seen[s.id] = s.what
	}
	_, statErr := os.Stat(filepath.Join(out, RunFile))
	run, err := openImportRun(out, paths, opts)
	if err != nil {
		return nil, err
	}
	sum := &ImportSummary{}
	if os.IsNotExist(statErr) {
		// A run this import created and that receives no sample is removed again.
		defer func() {
			if sum.Imported == 0 && run.Meta.EndTime == nil {
				removeEmptyRun(out)
			}
		}()
	}
	for i, s := range sources {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		sum.Samples = append(sum.Samples, s.id)
		if run.Finished(s.id) {
			sum.Skipped++
			if opts.Progress != nil {
				opts.Progress(s.id, true)
			}
			continue
		}
		sample := &Sample{ID: s.id, Source: s.what}
		if s.meta != nil {
			*sample = *s.meta
			sample.ID, sample.Source = s.id, s.what
		}
		if len(s.ids) > 0 {
			sample.IDs = s.ids
		}
		if tokens != nil {
			if err := tokens.fill(sample, s.tensor, i, s.shape[2]); err != nil {
				return sum, err
			}
		}
		if err := checkTokens(s, sample); err != nil {
			return sum, err
		}
		if err := importOne(ctx, run, s, sample, opts.FP16); err != nil {
			return sum, err
		}
		sum.Imported++
		if opts.Progress != nil {
			opts.Progress(s.id, false)
		}
	}
	end := time.Now().UTC()
	run.Meta.EndTime = &end
	return sum, run.WriteMeta()
}

func openImportRun(out string, paths []string, opts ImportOptions) (*Run, error) {
	dtype := "float32"
	if opts.FP16 {
		dtype = "float16"
	}
	if _, err := os.Stat(filepath.Join(out, RunFile)); err != nil {
		return Create(out, Meta{
			Version: buildinfo.Version(), Command: opts.Command, Kind: "import", DType: dtype,
			Inputs: paths, StartTime: time.Now().UTC(),
		})
	}
	run, err := Open(out)
	if err != nil {
		return nil, err
	}
	if run.Meta.Kind != "import" {
		return nil, fmt.Errorf("import into %s: the folder holds a %s run; import into a new folder", out, run.Meta.Kind)
	}
	if run.Meta.DType != dtype {
		return nil, fmt.Errorf("import into %s: the run stores %s, this import %s", out, run.Meta.DType, dtype)
	}
	for _, p := range paths {
		if !slices.Contains(run.Meta.Inputs, p) {
			run.Meta.Inputs = append(run.Meta.Inputs, p)
		}
	}
	run.Meta.AddCommand(opts.Command)
	run.Meta.EndTime = nil
	return run, run.WriteMeta()
}

// checkTokens checks that the token information fits the attention: N tokens, or
// N+1 for a generation (the last generated token has no attention row).
func checkTokens(s *source, sample *Sample) error {
	n := s.shape[2]
	for _, f := range []struct {
		name string
		len  int
	}{{"ids", len(sample.IDs)}, {"tokens", len(sample.Tokens)}, {"offsets", len(sample.Offsets)}} {
		if f.len != 0 && f.len != n && f.len != n+1 {
			return fmt.Errorf("import %s: the attention covers %d positions but %s has %d entries (%d or %d expected)", s.what, n, f.name, f.len, n, n+1)
		}
	}
	if len(sample.Offsets) > 0 {
		chars := utf8.RuneCountInString(sample.Text)
		for i, o := range sample.Offsets {
			if o[0] < 0 || o[0] > o[1] || o[1] > chars {
				return fmt.Errorf("import %s: offsets of token %d are %v, a span inside the %d-character text expected", s.what, i, o, chars)
			}
		}
	}
	if sample.PromptLen == 0 {
		sample.PromptLen = max(len(sample.IDs), len(sample.Tokens), n)
	}
	if sample.PromptText == "" && len(sample.Generated) == 0 {
		sample.PromptText = sample.Text
	}
	return nil
}

func importOne(ctx context.Context, run *Run, s *source, sample *Sample, fp16 bool) error {
	w, err := run.NewSample(s.id, SampleOptions{Layers: s.shape[0], FP16: fp16})
	if err != nil {
		return err
	}
	defer w.Abort()
	shape := s.shape[1:]
	for l := range s.shape[0] {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := s.layer(l)
		if err != nil {
			return fmt.Errorf("import %s: layer %d: %w", s.what, l, err)
		}
		if err := CheckAttention(fmt.Sprintf("import %s: layer %d", s.what, l), data); err != nil {
			return err
		}
		if err := w.Record(AttentionName(l), shape, data); err != nil {
			return err
		}
	}
	return w.Commit(sample)
}

// attentionShape validates a tensor's shape and returns it as [L, H, N, N].
func attentionShape(what string, shape []int) ([]int, error) {
	var out []int
	switch len(shape) {
	case 4:
		out = slices.Clone(shape)
	case 3:
		out = []int{shape[0], 1, shape[1], shape[2]}
	default:
		return nil, fmt.Errorf("import %s: shape %v has rank %d, attention of shape [layers, heads, N, N] or [layers, N, N] expected", what, shape, len(shape))
	}
	if out[2] != out[3] {
		return nil, fmt.Errorf("import %s: shape %v is not square in its last two dimensions (query = key positions expected)", what, shape)
	}
	if out[0] == 0 || out[1] == 0 || out[2] == 0 {
		return nil, fmt.Errorf("import %s: shape %v is empty", what, shape)
	}
	return out, nil
}

// discover lists the attention sources of one path.
func discover(p string) ([]*source, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if st.IsDir() {
		if fi, err := os.Stat(filepath.Join(p, "att_tensor")); err == nil && fi.IsDir() {
			return discoverFollowup(p)
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		var out []*source
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if e.Type().IsRegular() && (ext == ".npy" || ext == ".npz" || ext == ".safetensors") {
				found, err := discover(filepath.Join(p, e.Name()))
				out = append(out, found...)
				if err != nil {
					return out, err
				}
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("import %s: the folder holds no .npy, .npz or .safetensors files and no att_tensor/ folder", p)
		}
		return out, nil
	}
	stem := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
	switch strings.ToLower(filepath.Ext(p)) {
	case ".npy":
		s, err := npySource(p, SampleID(stem))
		if err != nil {
			return nil, err
		}
		return []*source{s}, nil
	case ".npz":
		return npzSources(p, stem)
	case ".safetensors":
		return safetensorsSources(p, stem)
	}
	return nil, fmt.Errorf("import %s: unknown file type (.npy, .npz, .safetensors or a followup-attention folder expected)", p)
}

// npyLayers returns a reader of consecutive layers of an .npy stream positioned
// at its data: layer l must be read after layer l-1.
func npyLayers(what string, r io.Reader, h *checkpoint.NpyHeader, shape []int) func(l int) ([]float32, error) {
	next := 0
	per := shape[1] * shape[2] * shape[3]
	return func(l int) ([]float32, error) {
		if l != next {
			return nil, fmt.Errorf("layers must be read in order (got %d, expected %d)", l, next)
		}
		next++
		sub := *h
		sub.Shape = []int{per}
		a, err := checkpoint.ReadNpyData(r, &sub)
		if err != nil {
			return nil, err
		}
		if h.DType == checkpoint.NpyFloat16 || h.DType == checkpoint.NpyFloat32 || h.DType == checkpoint.NpyFloat64 {
			return a.Float32s(), nil
		}
		return nil, fmt.Errorf("dtype %s is not floating point", h.Descr)
	}
}

func npySource(path, id string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	h, err := checkpoint.ReadNpyHeader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	shape, err := attentionShape(path, h.Shape)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.Size() < h.DataOffset+h.DataSize() {
		return nil, fmt.Errorf("import %s: truncated: shape %v needs %d data bytes, the file has %d", path, h.Shape, h.DataSize(), st.Size()-h.DataOffset)
	}
	s := &source{id: id, file: path, what: path, shape: shape}
	// The file is opened again when the sample is copied, so that a folder of
	// thousands of files does not hold thousands of descriptors.
	var read func(l int) ([]float32, error)
	var data *os.File
	s.close = func() {
		if data != nil {
			data.Close()
		}
	}
	s.layer = func(l int) ([]float32, error) {
		if l == 0 {
			s.close()
			var err error
			if data, err = os.Open(path); err != nil {
				return nil, err
			}
			if _, err := data.Seek(h.DataOffset, io.SeekStart); err != nil {
				return nil, err
			}
			read = npyLayers(path, bufio.NewReaderSize(data, 1<<20), h, shape)
		}
		if read == nil {
			return nil, errors.New("layer 0 must be read first")
		}
		return read(l)
	}
	return s, nil
}

func npzSources(path, stem string) ([]*source, error) {
	z, err := checkpoint.OpenNpz(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer z.Close()
	names := z.Names()
	if len(names) == 0 {
		return nil, fmt.Errorf("import %s: the archive holds no arrays", path)
	}
	var out []*source
	for _, name := range names {
		id := SampleID(stem)
		if len(names) > 1 {
			id = SampleID(stem + "." + name)
		}
		what := path + ":" + name
		h, err := z.Header(name)
		if err != nil {
			return out, fmt.Errorf("import: %w", err)
		}
		shape, err := attentionShape(what, h.Shape)
		if err != nil {
			return out, err
		}
		s := &source{id: id, file: path, what: what, tensor: name, shape: shape}
		var zf *checkpoint.NpzFile
		var rc io.ReadCloser
		var read func(l int) ([]float32, error)
		s.close = func() {
			if rc != nil {
				rc.Close()
			}
			if zf != nil {
				zf.Close()
			}
			rc, zf = nil, nil
		}
		s.layer = func(l int) ([]float32, error) {
			if l == 0 {
				s.close()
				var err error
				if zf, err = checkpoint.OpenNpz(path); err != nil {
					return nil, err
				}
				var h2 *checkpoint.NpyHeader
				if h2, rc, err = zf.OpenArray(name); err != nil {
					return nil, err
				}
				read = npyLayers(what, rc, h2, shape)
			}
			if read == nil {
				return nil, errors.New("layer 0 must be read first")
			}
			return read(l)
		}
		out = append(out, s)
	}
	return out, nil
}

var caseRe = regexp.MustCompile(`^(case\d+)\.`)

func safetensorsSources(path, stem string) ([]*source, error) {
	st, err := checkpoint.OpenSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	closeOnce := func() { st.Close() }
	names := st.Names()
	// attnscope's own layout: one sample of blocks.<l>.attn.pattern tensors.
	if _, ok := st.Info(AttentionName(0)); ok {
		n, err := attentionLayers(st)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("import: %w", err)
		}
		info, _ := st.Info(AttentionName(0))
		if len(info.Shape) != 3 {
			st.Close()
			return nil, fmt.Errorf("import %s: tensor %s has shape %v, [heads, N, N] expected", path, AttentionName(0), info.Shape)
		}
		shape, err := attentionShape(path, append([]int{n}, info.Shape...))
		if err != nil {
			st.Close()
			return nil, err
		}
		s := &source{id: SampleID(stem), file: path, what: path, shape: shape, close: closeOnce}
		s.layer = func(l int) ([]float32, error) {
			name := AttentionName(l)
			t, raw, err := st.Raw(name)
			if err != nil {
				return nil, err
			}
			if !slices.Equal(t.Shape, info.Shape) {
				return nil, fmt.Errorf("tensor %s has shape %v, layer 0 has %v", name, t.Shape, info.Shape)
			}
			return rawFloat32(t.DType, raw)
		}
		return []*source{s}, nil
	}
	// Otherwise every floating-point tensor of rank 3 or 4 whose name mentions
	// attention (all of them when no name does) is one sample.
	var picked []string
	for _, name := range names {
		if strings.Contains(strings.ToLower(name), "attention") {
			picked = append(picked, name)
		}
	}
	if len(picked) == 0 {
		for _, name := range names {
			if info, _ := st.Info(name); isFloat(info.DType) {
				picked = append(picked, name)
			}
		}
	}
	if len(picked) == 0 {
		st.Close()
		return nil, fmt.Errorf("import %s: no floating-point tensors", path)
	}
	var out []*source
	for i, name := range picked {
		info, _ := st.Info(name)
		what := path + ":" + name
		if !isFloat(info.DType) {
			st.Close()
			return nil, fmt.Errorf("import %s: dtype %s, floating-point attention (F32, F16, BF16, F64) expected", what, info.DType)
		}
		shape, err := attentionShape(what, info.Shape)
		if err != nil {
			st.Close()
			return nil, err
		}
		id := SampleID(stem)
		if len(picked) > 1 {
			id = SampleID(stem + "." + name)
		}
		s := &source{id: id, file: path, what: what, tensor: name, shape: shape}
		if i == len(picked)-1 {
			s.close = closeOnce
		}
		per := shape[1] * shape[2] * shape[3] * info.DType.Size()
		s.layer = func(l int) ([]float32, error) {
			_, raw, err := st.Raw(name)
			if err != nil {
				return nil, err
			}
			return rawFloat32(info.DType, raw[l*per:(l+1)*per])
		}
		if m := caseRe.FindStringSubmatch(name); m != nil {
			idsName := m[1] + ".input_ids"
			if strings.Contains(name, "generation") {
				idsName = m[1] + ".generated_ids"
			}
			if ids, _, err := st.Int64(idsName); err == nil {
				for _, v := range ids {
					s.ids = append(s.ids, int(v))
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func isFloat(d checkpoint.DType) bool {
	return d == checkpoint.F32 || d == checkpoint.F16 || d == checkpoint.BF16 || d == checkpoint.F64
}

// rawFloat32 converts little-endian safetensors bytes to float32.
func rawFloat32(d checkpoint.DType, b []byte) ([]float32, error) {
	switch d {
	case checkpoint.F32:
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case checkpoint.F16:
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = checkpoint.HalfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case checkpoint.BF16:
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
		return out, nil
	case checkpoint.F64:
		out := make([]float32, len(b)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s is not floating point", d)
}

// followupMeta is metadata/<stem>.json of followup-attention (seeds.md §1.2).
type followupMeta struct {
	TokensAll       []string `json:"tokens_all"`
	TokensPrompt    []string `json:"tokens_prompt"`
	TokensGenerated []string `json:"tokens_generated"`
	TextGenerated   string   `json:"text_generated"`
	TextPrompt      string   `json:"text_prompt"`
	GenerationTime  *float64 `json:"generation_time_seconds"`
	SourceFile      string   `json:"source_file"`
	ModeName        string   `json:"mode_name"`
}

func discoverFollowup(dir string) ([]*source, error) {
	attDir := filepath.Join(dir, "att_tensor")
	entries, err := os.ReadDir(attDir)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var out []*source
	for _, e := range entries {
		if !e.Type().IsRegular() || filepath.Ext(e.Name()) != ".npy" {
			continue
		}
		stem := strings.TrimSuffix(e.Name(), ".npy")
		s, err := npySource(filepath.Join(attDir, e.Name()), SampleID(stem))
		if err != nil {
			return out, err
		}
		out = append(out, s)
		mpath := filepath.Join(dir, "metadata", stem+".json")
		b, err := os.ReadFile(mpath)
		if errors.Is(err, os.ErrNotExist) {
			continue // attention without metadata: no token information
		}
		if err != nil {
			return out, fmt.Errorf("import: %w", err)
		}
		var m followupMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return out, fmt.Errorf("import %s: invalid JSON: %w", mpath, err)
		}
		s.meta = followupSample(&m)
		if s.meta.Source == "" {
			s.meta.Source = mpath
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("import %s: att_tensor/ holds no .npy files", dir)
	}
	return out, nil
}

// followupSample turns followup-attention metadata into a Sample. Tokens are the
// raw byte-level BPE strings (Ġ = space); when they decode to text_generated, each
// token's character span is computed.
func followupSample(m *followupMeta) *Sample {
	s := &Sample{
		Text: m.TextGenerated, PromptText: m.TextPrompt, Tokens: m.TokensAll, PromptLen: len(m.TokensPrompt),
		Extra: map[string]any{},
	}
	if m.SourceFile != "" {
		s.Extra["source_file"] = m.SourceFile
	}
	if m.ModeName != "" {
		s.Extra["model"] = m.ModeName
	}
	if m.GenerationTime != nil {
		s.Seconds = *m.GenerationTime
	}
	if offs, text, ok := byteLevelOffsets(m.TokensAll); ok && (text == m.TextGenerated || m.TextGenerated == "") {
		s.Offsets = offs
		s.Text = text
	}
	if s.Text == "" {
		s.Text = m.TextPrompt
	}
	return s
}

// byteLevelDecoder maps GPT-2's byte-level characters back to bytes
// (bytes_to_unicode of openai/gpt-2 encoder.py, inverted).
var byteLevelDecoder = func() map[rune]byte {
	m := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
			m[rune(b)] = byte(b)
		} else {
			m[rune(256+n)] = byte(b)
			n++
		}
	}
	return m
}()

// byteLevelOffsets decodes byte-level BPE tokens and returns each token's
// character span in the decoded text; ok is false when a token is not byte-level
// or the bytes are not UTF-8.
func byteLevelOffsets(tokens []string) ([][2]int, string, bool) {
	var buf []byte
	ends := make([]int, len(tokens))
	for i, t := range tokens {
		for _, r := range t {
			b, ok := byteLevelDecoder[r]
			if !ok {
				return nil, "", false
			}
			buf = append(buf, b)
		}
		ends[i] = len(buf)
	}
	if !utf8.Valid(buf) {
		return nil, "", false
	}
	// runeAt[b] is the index of the character holding byte b.
	runeAt := make([]int, len(buf)+1)
	c := -1
	for b := range buf {
		if utf8.RuneStart(buf[b]) {
			c++
		}
		runeAt[b] = c
	}
	runeAt[len(buf)] = c + 1
	offs := make([][2]int, len(tokens))
	start := 0
	for i, end := range ends {
		// A token that starts or ends inside a character covers that character.
		if end == start {
			offs[i] = [2]int{runeAt[start], runeAt[start]}
		} else {
			offs[i] = [2]int{runeAt[start], runeAt[end-1] + 1}
		}
		start = end
	}
	return offs, string(buf), true
}

// tokenTable is the --tokens-from file.
type tokenTable struct {
	path  string
	cases []tokenEntry
	byID  map[string]tokenEntry
}

type tokenEntry struct {
	Text      string   `json:"text"`
	IDs       []int    `json:"ids"`
	Tokens    []string `json:"tokens"`
	Offsets   [][2]int `json:"offsets"`
	PromptLen int      `json:"prompt_length"`
}

func readTokenTable(path string) (*tokenTable, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("read %s: a JSON object expected: %w", path, err)
	}
	t := &tokenTable{path: path}
	if raw, ok := top["cases"]; ok {
		if err := json.Unmarshal(raw, &t.cases); err != nil {
			return nil, fmt.Errorf("read %s: field cases: a list of {text, ids, tokens, offsets} expected: %w", path, err)
		}
		return t, nil
	}
	t.byID = map[string]tokenEntry{}
	for k, raw := range top {
		var e tokenEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("read %s: field %q: {text, ids, tokens, offsets, prompt_length} expected: %w", path, k, err)
		}
		t.byID[k] = e
	}
	return t, nil
}

// fill copies the token information of a sample into s: by sample id, else for a
// "cases" file by the case<i> prefix of the tensor name, else by position.
func (t *tokenTable) fill(s *Sample, tensor string, index, positions int) error {
	var e tokenEntry
	switch {
	case t.byID != nil:
		var ok bool
		if e, ok = t.byID[s.ID]; !ok {
			return nil
		}
	default:
		i := index
		if m := caseRe.FindStringSubmatch(tensor); m != nil {
			i, _ = strconv.Atoi(strings.TrimPrefix(m[1], "case"))
		}
		if i >= len(t.cases) {
			return fmt.Errorf("import: %s has %d cases, none for sample %s", t.path, len(t.cases), s.ID)
		}
		e = t.cases[i]
	}
	if len(e.Offsets) > 0 && len(e.Tokens) > 0 && len(e.Offsets) != len(e.Tokens) {
		return fmt.Errorf("read %s: sample %s: %d offsets for %d tokens", t.path, s.ID, len(e.Offsets), len(e.Tokens))
	}
	s.Text, s.PromptText = e.Text, e.Text
	n := max(len(e.Tokens), len(e.IDs))
	if strings.Contains(tensor, "generation") {
		// reference.json's cases hold the prompt of a generation: its text and
		// length; the ids come from the tensor file's generated_ids.
		s.PromptLen = n
		if n < positions {
			return nil
		}
	} else {
		s.PromptLen = e.PromptLen
	}
	if len(s.IDs) == 0 {
		s.IDs = e.IDs
	}
	s.Tokens, s.Offsets = e.Tokens, e.Offsets
	return nil
}

// removeEmptyRun removes the run.json of a run folder that holds no sample, then its
// samples folder and the folder itself when they are empty (os.Remove removes no
// non-empty folder, so nothing else in it is touched).
func removeEmptyRun(dir string) {
	if ids, err := os.ReadDir(filepath.Join(dir, SamplesDir)); err == nil && len(ids) > 0 {
		return
	}
	os.Remove(filepath.Join(dir, RunFile))
	os.Remove(filepath.Join(dir, SamplesDir))
	os.Remove(dir)
}
