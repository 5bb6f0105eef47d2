package human

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
)

func datasetDir(t *testing.T) string {
	t.Helper()
	return refdata.Path(t, "..", "datasets", "followup-attention")
}

type gridToken struct {
	Column   int    `yaml:"column"`
	Excluded bool   `yaml:"excluded"`
	Idx      int    `yaml:"idx"`
	Line     int    `yaml:"line"`
	Token    string `yaml:"token"`
}

// Every token of the developers' token grids (human_attention_tasks/sensemaking/*.yaml:
// line from 1, column from 0) is fixated at the centre of its first character's
// screen cell, with the editor scrolled so that the line is on screen; with
// attention spans 0 the weight must land on exactly that character of the task
// file, and the file's characters there must spell the token.
func TestTokenGridFixationsLandOnTheirCharacters(t *testing.T) {
	dir := filepath.Join(datasetDir(t), "human_attention_tasks", "sensemaking")
	grids, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(grids) != 45 {
		t.Fatalf("want 45 token grids in %s, got %d (%v)", dir, len(grids), err)
	}
	zero := 0
	c := &Config{ScreenResolution: genRes, Zoom: map[string]Zoom{"M": genZoom},
		Attention: AttentionSpan{Horizontal: &zero, Vertical: &zero}}
	p := &Participant{Name: "x", Zoom: "M", ManualScreenCoordinates: &genScreen}
	checked := 0
	var gridDefects []string
	for _, g := range grids {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		var grid struct {
			Tokens []gridToken `yaml:"tokens"`
		}
		if err := yaml.Unmarshal(b, &grid); err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		src, err := os.ReadFile(strings.TrimSuffix(g, ".yaml") + filepath.Ext(findSource(t, g)))
		if err != nil {
			t.Fatal(err)
		}
		text := string(src)
		lines := strings.SplitAfter(text, "\n")
		shiftLine, shift := 0, 0
		for _, tok := range grid.Tokens {
			if strings.TrimSpace(tok.Token) == "" || tok.Column+1 > genZoom.NCol {
				continue
			}
			first := max(0, tok.Line-1-genZoom.NLines/2)
			cw := (genScreen.XEnd - genScreen.XStart) / float64(genZoom.NCol)
			ch := (genScreen.YEnd - genScreen.YStart) / float64(genZoom.NLines)
			x := (genScreen.XStart + cw*(float64(tok.Column)+0.5)) / float64(genRes.Width)
			y := (genScreen.YStart + ch*(float64(tok.Line-1-first)+0.5)) / float64(genRes.Height)
			// round as Gazepoint writes them (5 decimals)
			x, y = math.Round(x*1e5)/1e5, math.Round(y*1e5)/1e5
			s := &Session{Text: text}
			snap := &Snapshot{File: "f", FirstLine: first}
			c.attribute(s, p, *p.ManualScreenCoordinates, []event{{time: 1, snap: snap}, {time: 2, fix: &Fixation{Time: 2, Duration: 1, X: x, Y: y}}}, "f")
			var hit []int
			for i, w := range s.Weights {
				if w != 0 {
					hit = append(hit, i)
				}
			}
			want := charIndex(lines, tok.Line, tok.Column)
			if len(hit) != 1 || hit[0] != want {
				t.Fatalf("%s token %d %q at line %d column %d: weight on characters %v, want [%d]", filepath.Base(g), tok.Idx, tok.Token, tok.Line, tok.Column, hit, want)
			}
			// The grid itself loses a blank on a few lines (e.g. csharp_scheduler_Q1
			// token 300 "!=" sits at the blank before it), shifting the columns of the
			// line's later tokens by one; such entries are counted, and must be rare.
			if tok.Line != shiftLine {
				shiftLine, shift = tok.Line, 0
			}
			runes := []rune(text)
			at := want + shift
			if !strings.HasPrefix(string(runes[min(at, len(runes)):]), tok.Token) {
				if at < len(runes) && (runes[at] == ' ' || runes[at] == '\t') && strings.HasPrefix(string(runes[at+1:]), tok.Token) {
					shift++
					gridDefects = append(gridDefects, fmt.Sprintf("%s#%d", filepath.Base(g), tok.Idx))
				} else {
					t.Fatalf("%s token %d %q at line %d column %d: the file has %q there", filepath.Base(g), tok.Idx, tok.Token, tok.Line, tok.Column, string(runes[at:min(len(runes), at+len([]rune(tok.Token)))]))
				}
			}
			checked++
		}
	}
	if checked < 10000 {
		t.Fatalf("only %d tokens checked", checked)
	}
	t.Logf("%d tokens of %d grids; %d grid entries whose column points at the blank before the token: %v", checked, len(grids), len(gridDefects), gridDefects)
	if len(gridDefects) > checked/100 {
		t.Fatalf("%d of %d grid entries do not spell their token", len(gridDefects), checked)
	}
}

func findSource(t *testing.T, yamlPath string) string {
	for _, ext := range []string{".py", ".cpp", ".cs"} {
		if _, err := os.Stat(strings.TrimSuffix(yamlPath, ".yaml") + ext); err == nil {
			return ext
		}
	}
	t.Fatalf("no source file for %s", yamlPath)
	return ""
}

// charIndex is the index of the character at line (from 1) and column (from 0).
func charIndex(lines []string, line, col int) int {
	n := 0
	for _, l := range lines[:line-1] {
		n += len([]rune(l))
	}
	return n + col
}

func sensemakingFiles(t *testing.T, n int) (string, []string) {
	q := filepath.Join(datasetDir(t), "human_attention_tasks")
	all, err := filepath.Glob(filepath.Join(q, "sensemaking", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".yaml") {
			files = append(files, "sensemaking/"+filepath.Base(f))
		}
	}
	sort.Strings(files)
	if n < len(files) {
		// a spread over the languages
		step := len(files) / n
		var pick []string
		for i := 0; i < n; i++ {
			pick = append(pick, files[i*step])
		}
		files = pick
	}
	return q, files
}

// The generated study is processed back into exactly the generator's ground-truth
// weights, and the typed answers are found.
func TestGeneratorGroundTruthRecovered(t *testing.T) {
	q, files := sensemakingFiles(t, 6)
	out := t.TempDir()
	truth, err := Generate(out, GenerateOptions{Questions: q, Files: files, Participants: 4, TasksPerParticipant: 3, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(filepath.Join(out, "eye.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := GetWeights(ctx, c, Options{}); err != nil {
		t.Fatal(err)
	}
	nonzero := 0
	for _, id := range sortedKeys(truth) {
		a, err := checkpoint.ReadNpyFile(filepath.Join(out, "run", "derived", PassCharWeights, id+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		got, want := a.Float64s(), truth[id]
		if len(got) != len(want) {
			t.Fatalf("%s: %d weights, want %d", id, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: character %d: weight %v, want %v", id, i, got[i], want[i])
			}
			if want[i] != 0 {
				nonzero++
			}
		}
	}
	if len(truth) != 12 || nonzero < 1000 {
		t.Fatalf("%d sessions, %d weighted characters: the generator made too little", len(truth), nonzero)
	}
	if err := GetAnswers(ctx, c, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := GetAnswersDataset(ctx, c, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range sortedKeys(truth) {
		b, err := os.ReadFile(filepath.Join(out, "run", HumanDir, "answers", id+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		name, rest, _ := strings.Cut(string(b), "\n")
		if !strings.HasPrefix(rest, "# Question") || !strings.Contains(rest, "# Answer: it places queens row by row") || !strings.HasSuffix(name, filepath.Ext(name)) || !strings.Contains(strings.Join(files, " "), "/"+name) {
			t.Fatalf("%s: answer %q is not <task file>\n# Question ... # Answer: <the typed answer>", id, b)
		}
	}
}

// Oracle: events (token 0, t = 0 s, d = 1 s) and (token 1, t = 2 s, d = 1 s) with
// δ = 0.1 give F[0,1] = (e^{−0.1} − e^{−0.2})/0.1 = 0.861067, every other cell 0;
// swapping the events in time moves the mass to F[1,0].
func TestFollowupOracle(t *testing.T) {
	ctx := context.Background()
	m, err := FollowupMatrix(ctx, []FollowupEvent{{0, 0, 1}, {1, 2, 1}}, 2, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	want := (math.Exp(-0.1) - math.Exp(-0.2)) / 0.1
	if math.Abs(m[1]-want) > 1e-12 || math.Abs(m[1]-0.861067) > 5e-7 || m[0] != 0 || m[2] != 0 || m[3] != 0 {
		t.Fatalf("F = %v, want [0 %v 0 0]", m, want)
	}
	m, _ = FollowupMatrix(ctx, []FollowupEvent{{1, 0, 1}, {0, 2, 1}}, 2, 0.1)
	if math.Abs(m[2]-want) > 1e-12 || m[0] != 0 || m[1] != 0 || m[3] != 0 {
		t.Fatalf("swapped: F = %v, want [0 0 %v 0]", m, want)
	}
}

// FollowupMatrix (sorted, suffix only) equals the definition evaluated on every
// ordered pair of events in float64.
func TestFollowupMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		n := 1 + rng.IntN(6)
		var ev []FollowupEvent
		tm := 0.0
		for k := 0; k < 1+rng.IntN(40); k++ {
			tm += rng.Float64() * 0.7
			ev = append(ev, FollowupEvent{Record: rng.IntN(n), Time: tm, Duration: rng.Float64() * 0.9})
		}
		d := 0.05 + rng.Float64()
		got, err := FollowupMatrix(context.Background(), ev, n, d)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, n*n)
		for _, e1 := range ev {
			for _, e2 := range ev {
				a := e2.Time - (e1.Time + e1.Duration)
				b := e2.Time + e2.Duration - (e1.Time + e1.Duration)
				if a >= 0 {
					want[e1.Record*n+e2.Record] += (math.Exp(-d*a) - math.Exp(-d*b)) / d
				}
			}
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
				t.Fatalf("trial %d cell %d: %v, want %v", trial, i, got[i], want[i])
			}
		}
	}
}

func TestAggregateOracle(t *testing.T) {
	// aggregate_dim_tokens_to_line(arange(12).reshape(3,4), dim=1, lines=[0,0,1,1]) → [[1,5],[9,13],[17,21]]
	m := make([]float64, 12)
	for i := range m {
		m[i] = float64(i)
	}
	got := AggregateColumns(m, 3, 4, []int{0, 0, 1, 1})
	want := []float64{1, 5, 9, 13, 17, 21}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	sq, labels := Aggregate([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, []int{2, 0, 2})
	// rows/cols grouped {1}→label 0, {0,2}→label 2
	wantSq := []float64{5, 4 + 6, 2 + 8, 1 + 3 + 7 + 9}
	if labels[0] != 0 || labels[1] != 2 {
		t.Fatalf("labels %v", labels)
	}
	for i := range wantSq {
		if sq[i] != wantSq[i] {
			t.Fatalf("got %v, want %v", sq, wantSq)
		}
	}
}

func TestRecordsSplitNewlineTokens(t *testing.T) {
	text := "ab\n\ncd\n"
	// tokens "ab", "\n\n", "cd", "\n"
	recs, charRec, err := Records(text, [][2]int{{0, 0}, {0, 2}, {2, 4}, {4, 6}, {6, 7}})
	if err != nil {
		t.Fatal(err)
	}
	want := []TokenRecord{{T: "ab", I: 1, L: 1, C: 1}, {T: "\n", I: 2, L: 1, C: 3}, {T: "\n", I: 2, L: 2, C: 1}, {T: "cd", I: 3, L: 3, C: 1}, {T: "\n", I: 4, L: 3, C: 3}}
	if len(recs) != len(want) {
		t.Fatalf("records %+v", recs)
	}
	for i := range want {
		r := recs[i]
		if r.T != want[i].T || r.I != want[i].I || r.L != want[i].L || r.C != want[i].C {
			t.Fatalf("record %d = %+v, want %+v", i, r, want[i])
		}
	}
	if got := charRec; got[0] != 0 || got[2] != 1 || got[3] != 2 || got[6] != 4 {
		t.Fatalf("char records %v", got)
	}
}

func TestTokenWeightsPreserveTotal(t *testing.T) {
	w := []float64{1, 2, 3, 0, 5}
	got, err := TokenWeights(w, [][2]int{{0, 0}, {0, 2}, {1, 3}, {3, 5}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 3, 3, 5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if _, err := TokenWeights(w, [][2]int{{0, 3}}); err == nil {
		t.Fatal("weight outside every token accepted")
	}
}

func TestNpSumMatchesPairwise(t *testing.T) {
	// numpy's pairwise sum differs from a left-to-right sum on this input; the values
	// are checked against numpy in TestAvgBehaviorMatchesPandas.
	a := make([]float64, 300)
	for i := range a {
		a[i] = 1 / float64(i+1)
	}
	var seq float64
	for _, v := range a {
		seq += v
	}
	if math.Abs(npSum(a)-seq) > 1e-12 {
		t.Fatalf("npSum %v far from %v", npSum(a), seq)
	}
}
