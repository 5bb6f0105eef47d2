package human

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
)

// GenerateOptions describe a synthetic eye-tracking study (Generate).
type GenerateOptions struct {
	// Questions is the folder that holds the task files (folder_questions).
	Questions string
	// Files are the task files relative to Questions, as <folder>/<name>.
	Files []string
	// Participants is the number of synthetic developers; each reads
	// TasksPerParticipant files, assigned round-robin over Files.
	Participants, TasksPerParticipant int
	// Seed makes the study reproducible.
	Seed uint64
	// ModelTokenizer and ModelFolder go into the config's followup_attention.
	ModelTokenizer string
	// RegressionProb is the chance that a fixation jumps back to an earlier word
	// (default 0.15); OutsideProb the chance of a fixation outside the code area
	// (default 0.05).
	RegressionProb, OutsideProb float64
}

// The synthetic screen: 1920×1080 with the code area of zoom level M (26 lines × 97
// columns) at a fixed place.
var (
	genRes    = ScreenResolution{Width: 1920, Height: 1080}
	genScreen = ScreenCoordinates{XStart: 400, YStart: 100, XEnd: 1500, YEnd: 1000}
	genZoom   = Zoom{NLines: 26, NCol: 97}
)

const (
	genH, genV = 4, 1 // attention spans of the generated config
	// genStep is the time grid of the generator (1/32 s): every start and duration is
	// a multiple of it, so FPOGS and FPOGD are exact in 5 decimals and every sum of
	// durations is exact in float64.
	genStep = 0.03125
)

// genFixation is a generated fixation on file cell (Line, Col), both from 1, while
// the editor shows the file from line First (0-based); Outside marks a fixation
// outside the code area.
type genFixation struct {
	Start, Dur float64 // seconds since the recording started
	Line, Col  int
	First      int
	Outside    bool
	Used       bool // after the first snapshot
}

// Generate writes a synthetic eye-tracking study into out: for every participant
// out/participants/<name>/<task>_fixations.csv (Gazepoint format: TIME(<date>
// <time>) header, FPOGS, FPOGD, FPOGX, FPOGY and the usual other columns) and
// out/participants/<name>/Snapshots/<h-mm-ss-AM|PM-fff>.txt (editor snapshots), the
// config out/eye.yaml that processes them into out/run, and the ground truth
// out/truth/<unique data id>.npy: the character weights the pipeline must recover.
//
// The generated developer reads the task file word by word from the top (a word is a
// run of non-blank characters; each fixation lands on the word's middle character),
// with probability RegressionProb jumping back to one of the last 30 words instead;
// fixations last 4–16 steps of 1/32 s with a gap of one step. The editor scrolls
// (a new snapshot, one millisecond before the fixation) whenever the next word is
// not on screen. The first fixation comes before the first snapshot and, like
// fixations outside the code area (probability OutsideProb), adds no weight. At the
// end the developer types an answer after "# Answer:" in two edits.
//
// The ground truth is computed per character, independently of the pipeline's grid
// inversion: character (ℓ, c) receives the duration of every used fixation on
// (ℓ₀, c₀) with |ℓ−ℓ₀| ≤ 1, |c−c₀| ≤ 4, ℓ on screen and c ≤ 97.
func Generate(out string, o GenerateOptions) (map[string][]float64, error) {
	if o.Participants <= 0 || o.TasksPerParticipant <= 0 || len(o.Files) == 0 {
		return nil, fmt.Errorf("generate: need participants, tasks per participant and files")
	}
	if o.RegressionProb == 0 {
		o.RegressionProb = 0.15
	}
	if o.OutsideProb == 0 {
		o.OutsideProb = 0.05
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	qdir, err := filepath.Abs(o.Questions)
	if err != nil {
		return nil, err
	}
	if o.ModelTokenizer != "" {
		if o.ModelTokenizer, err = filepath.Abs(o.ModelTokenizer); err != nil {
			return nil, err
		}
	}
	truth := map[string][]float64{}
	var parts []map[string]any
	k := 0
	for pi := 0; pi < o.Participants; pi++ {
		name := fmt.Sprintf("dev%02d", pi+1)
		dir := filepath.Join(out, "participants", name)
		if err := os.MkdirAll(filepath.Join(dir, "Snapshots"), 0o755); err != nil {
			return nil, err
		}
		var tasks []int
		for t := 0; t < o.TasksPerParticipant; t++ {
			file := o.Files[k%len(o.Files)]
			k++
			b, err := os.ReadFile(filepath.Join(qdir, filepath.FromSlash(file)))
			if err != nil {
				return nil, fmt.Errorf("generate: %w", err)
			}
			text := strings.ReplaceAll(string(b), "\r\n", "\n")
			// tasks start 10 minutes apart, from 10:00:00.000 + participant minutes
			startMS := int64((10*3600+pi*60+t*600)*1000) + int64(pi*7%1000)
			w, err := genSession(dir, file, text, t, startMS, rng, o)
			if err != nil {
				return nil, err
			}
			truth[UniqueDataID(name, t)] = w
			tasks = append(tasks, t)
		}
		parts = append(parts, map[string]any{"name": name, "zoom": "M", "tasks": tasks,
			"manual_screen_coordinates": map[string]any{"x_start_screen_abs": genScreen.XStart, "y_start_screen_abs": genScreen.YStart,
				"x_end_screen_abs": genScreen.XEnd, "y_end_screen_abs": genScreen.YEnd}})
	}
	if err := os.MkdirAll(filepath.Join(out, "truth"), 0o755); err != nil {
		return nil, err
	}
	for id, w := range truth {
		if err := checkpoint.WriteNpyFile(filepath.Join(out, "truth", id+".npy"), []int{len(w)}, w); err != nil {
			return nil, err
		}
	}
	cfg := yaml.MapSlice{
		{Key: "folder_output", Value: "run"},
		{Key: "folder_questions", Value: qdir},
		{Key: "folder_participants", Value: "participants"},
		{Key: "tokenization", Value: map[string]any{"model_names": nonEmpty(o.ModelTokenizer)}},
		{Key: "followup_attention", Value: map[string]any{"decays": []float64{0.1}, "model_tokenizer": o.ModelTokenizer,
			"normalization": NormRowsToProb, "force_model_tokens": true, "levels": []string{"token", "line"}}},
		{Key: "participants", Value: parts},
		{Key: "attention_parameters", Value: map[string]any{"horizontal_attention_span": genH, "vertical_attention_span": genV}},
		{Key: "screen_resolution", Value: map[string]any{"pixel_screen_width": genRes.Width, "pixel_screen_height": genRes.Height}},
		{Key: "zoom_dependant_parameters", Value: map[string]any{"M": map[string]any{"n_lines": genZoom.NLines, "n_col": genZoom.NCol}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	head := "# Synthetic eye-tracking study written by attnscope human generate (seed " + fmt.Sprint(o.Seed) + ").\n"
	return truth, atomicfile.WriteFile(filepath.Join(out, "eye.yaml"), append([]byte(head), b...))
}

func nonEmpty(s string) []string {
	if s == "" {
		return []string{}
	}
	return []string{s}
}

type word struct{ line, col int } // 1-based line, 1-based middle column

func words(text string) []word {
	var out []word
	for li, l := range strings.Split(text, "\n") {
		r := []rune(l)
		for c := 0; c < len(r); {
			if r[c] == ' ' || r[c] == '\t' {
				c++
				continue
			}
			s := c
			for c < len(r) && r[c] != ' ' && r[c] != '\t' {
				c++
			}
			mid := (s+c-1)/2 + 1
			if mid <= genZoom.NCol {
				out = append(out, word{li + 1, mid})
			}
		}
	}
	return out
}

// genSession writes one task's fixations and snapshots and returns its ground truth.
func genSession(dir, file, text string, task int, startMS int64, rng *rand.Rand, o GenerateOptions) ([]float64, error) {
	ws := words(text)
	if len(ws) == 0 {
		return nil, fmt.Errorf("generate: %s has no words", file)
	}
	lines := strings.SplitAfter(text, "\n")
	var fix []genFixation
	t := genStep * 8
	first := -1 // no snapshot yet
	type snap struct {
		ms    int64
		first int
		extra string // answer typed so far
	}
	var snaps []snap
	// calibration fixation before any snapshot
	fix = append(fix, genFixation{Start: t, Dur: genStep * 4, Line: 1, Col: 1})
	t += genStep * 5
	n := min(len(ws)+len(ws)/5, 600)
	pos := 0
	for i := 0; i < n && pos < len(ws); i++ {
		w := ws[pos]
		if i > 0 && rng.Float64() < o.RegressionProb {
			w = ws[max(0, pos-1-rng.IntN(min(pos, 30)+1))]
		} else {
			pos++
		}
		dur := genStep * float64(4+rng.IntN(13))
		if first < 0 || w.line < first+1 || w.line > first+genZoom.NLines {
			first = max(0, w.line-1-genZoom.NLines/3)
			snaps = append(snaps, snap{ms: startMS + int64(math.Floor(t*1000)) - 1, first: first})
		}
		f := genFixation{Start: t, Dur: dur, Line: w.line, Col: w.col, First: first, Used: true}
		if rng.Float64() < o.OutsideProb {
			f.Outside = true
		}
		fix = append(fix, f)
		t += dur + genStep
	}
	// the answer, typed in two edits with the last lines on screen
	last := max(0, len(lines)-genZoom.NLines)
	snaps = append(snaps, snap{ms: startMS + int64(math.Floor(t*1000)) - 1, first: last})
	fix = append(fix, genFixation{Start: t, Dur: genStep * 4, Line: last + 1, Col: 1, First: last, Used: true})
	t += genStep * 5
	for _, a := range []string{" it", " it places queens row by row"} {
		snaps = append(snaps, snap{ms: startMS + int64(math.Floor(t*1000)) - 1, first: last, extra: a})
		fix = append(fix, genFixation{Start: t, Dur: genStep * 4, Line: last + 1, Col: 1, First: last, Used: true})
		t += genStep * 5
	}
	if err := writeFixations(filepath.Join(dir, fmt.Sprintf("%d_fixations.csv", task)), startMS, fix); err != nil {
		return nil, err
	}
	for _, s := range snaps {
		vis := lines[s.first:min(len(lines), s.first+genZoom.NLines)]
		body := strings.Join(vis, "")
		if s.extra != "" {
			body = strings.Replace(body, "# Answer:", "# Answer:"+s.extra, 1)
		}
		head := `C:\Users\dev\Desktop\study\` + strings.ReplaceAll(file, "/", `\`) + fmt.Sprintf(":%d\n", s.first)
		if err := atomicfile.WriteFile(filepath.Join(dir, "Snapshots", snapshotName(s.ms)), []byte(head+body)); err != nil {
			return nil, err
		}
	}
	return genTruth(text, fix), nil
}

// snapshotName spells a time of day (ms) as the plugin's file names: h-mm-ss-AM-fff.txt.
func snapshotName(ms int64) string {
	h := ms / 3600000
	m := ms / 60000 % 60
	s := ms / 1000 % 60
	f := ms % 1000
	ampm := "AM"
	if h >= 12 {
		ampm = "PM"
	}
	h12 := h % 12
	if h12 == 0 {
		h12 = 12
	}
	return fmt.Sprintf("%d-%02d-%02d-%s-%03d.txt", h12, m, s, ampm, f)
}

func writeFixations(path string, startMS int64, fix []genFixation) error {
	h := startMS / 3600000
	m := startMS / 60000 % 60
	s := startMS / 1000 % 60
	ms := startMS % 1000
	var b strings.Builder
	fmt.Fprintf(&b, "MEDIA_ID,MEDIA_NAME,CNT,TIME(2022/06/01 %02d:%02d:%02d.%03d),TIMETICK(f=10000000),FPOGX,FPOGY,FPOGS,FPOGD,FPOGID,FPOGV,BPOGX,BPOGY,BPOGV\n", h, m, s, ms)
	for i, f := range fix {
		x, y := 0.1, 0.5
		if !f.Outside {
			gl := f.Line - 1 - f.First
			gc := f.Col - 1
			cw := (genScreen.XEnd - genScreen.XStart) / float64(genZoom.NCol)
			ch := (genScreen.YEnd - genScreen.YStart) / float64(genZoom.NLines)
			x = (genScreen.XStart + cw*(float64(gc)+0.5)) / float64(genRes.Width)
			y = (genScreen.YStart + ch*(float64(gl)+0.5)) / float64(genRes.Height)
		}
		fmt.Fprintf(&b, "0,NewMedia,%d,%.5f,%d,%.5f,%.5f,%.5f,%.5f,%d,1,%.5f,%.5f,1\n",
			i, f.Start, int64(f.Start*1e7), x, y, f.Start, f.Dur, i+1, x, y)
	}
	return atomicfile.WriteFile(path, []byte(b.String()))
}

// genTruth is the expected character weights: for every character, the summed
// duration of the used fixations in whose neighbourhood it lies.
func genTruth(text string, fix []genFixation) []float64 {
	runes := []rune(text)
	w := make([]float64, len(runes))
	line, col := 1, 1
	for i, r := range runes {
		for _, f := range fix {
			if !f.Used || f.Outside {
				continue
			}
			onScreen := line >= f.First+1 && line <= f.First+genZoom.NLines && col >= 1 && col <= genZoom.NCol
			if onScreen && abs(line-f.Line) <= genV && abs(col-f.Col) <= genH {
				w[i] += f.Dur
			}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return w
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// sortedKeys returns the keys of a truth map in order.
func sortedKeys(m map[string][]float64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
