package human

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodHeader = "MEDIA_ID,CNT,TIME(2022/06/01 10:00:00.250),FPOGX,FPOGY,FPOGS,FPOGD,FPOGID\n"

func TestReadFixationsTime(t *testing.T) {
	fx, err := ReadFixations("f.csv", strings.NewReader(goodHeader+"0,0,1.5,0.5,0.5,1.5,0.25,1\n0,1,2.0,0.25,0.75,2.0,0.125,2\n"))
	if err != nil {
		t.Fatal(err)
	}
	// offset = 10 h 0 min 0.25 s = 36000250 ms; FPOGS_abs = FPOGS·1000 + offset
	if len(fx) != 2 || fx[0].Time != 1500+36000250 || fx[1].Time != 2000+36000250 || fx[0].Duration != 0.25 || fx[1].X != 0.25 || fx[1].Y != 0.75 || fx[1].Row != 3 {
		t.Fatalf("fixations %+v", fx)
	}
}

func TestReadFixationsBadInput(t *testing.T) {
	cases := []struct {
		name, csv string
		want      []string
	}{
		{"missing column", "MEDIA_ID,TIME(2022/06/01 10:00:00.250),FPOGY,FPOGS,FPOGD\n0,0,0.5,1,0.1\n", []string{"bad.csv", "line 1", "missing column FPOGX"}},
		{"no time column", "FPOGX,FPOGY,FPOGS,FPOGD\n0.5,0.5,1,0.1\n", []string{"bad.csv", "line 1", "TIME("}},
		{"bad time header", "TIME(yesterday),FPOGX,FPOGY,FPOGS,FPOGD\n0,0.5,0.5,1,0.1\n", []string{"bad.csv", "line 1", "TIME(yesterday)"}},
		{"times out of order", goodHeader + "0,0,2,0.5,0.5,2.0,0.25,1\n0,1,1,0.5,0.5,1.0,0.25,2\n", []string{"bad.csv", "line 3", "field FPOGS", "out of order"}},
		{"x outside the screen", goodHeader + "0,0,2,1.25,0.5,2.0,0.25,1\n", []string{"bad.csv", "line 2", "field FPOGX", "outside the screen"}},
		{"y outside the screen", goodHeader + "0,0,2,0.5,-0.1,2.0,0.25,1\n", []string{"bad.csv", "line 2", "field FPOGY", "outside the screen"}},
		{"not a number", goodHeader + "0,0,2,0.5,0.5,soon,0.25,1\n", []string{"bad.csv", "line 2", "field FPOGS", "not a finite number"}},
		{"negative duration", goodHeader + "0,0,1,0.5,0.5,1,-0.25,1\n", []string{"bad.csv", "line 2", "field FPOGD", "negative"}},
		{"short row", goodHeader + "0,0,0.5\n", []string{"bad.csv", "line 2", "missing"}},
		{"empty", "", []string{"bad.csv", "empty file"}},
	}
	for _, c := range cases {
		_, err := ReadFixations("bad.csv", strings.NewReader(c.csv))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
}

func TestOffScreenFixationsKept(t *testing.T) {
	fx, err := readFixations("f.csv", strings.NewReader(goodHeader+"0,0,2,1.25,-0.5,2.0,0.25,1\n"), true)
	if err != nil || len(fx) != 1 || fx[0].X != 1.25 || fx[0].Y != -0.5 {
		t.Fatalf("%+v %v", fx, err)
	}
	if _, _, ok := gridCell(fx[0].X, fx[0].Y, genRes, genScreen, genZoom.NLines, genZoom.NCol); ok {
		t.Fatal("an off-screen point mapped into the code area")
	}
}

func FuzzReadFixations(f *testing.F) {
	f.Add([]byte(goodHeader + "0,0,1.5,0.5,0.5,1.5,0.25,1\n0,1,2.0,0.25,0.75,2.0,0.125,2\n"))
	f.Add([]byte("TIME(2022/06/01 23:59:59.999999),FPOGX,FPOGY,FPOGS,FPOGD\n0,1,1,0,0\n"))
	f.Add([]byte("\ufeffTIME(a b),FPOGX\n\"x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fx, err := ReadFixations("fuzz.csv", bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for i, x := range fx {
			if x.X < 0 || x.X > 1 || x.Y < 0 || x.Y > 1 || x.Duration < 0 || (i > 0 && x.Time < fx[i-1].Time) {
				t.Fatalf("accepted an invalid fixation %+v", x)
			}
		}
	})
}

func TestConfigUnknownKeyword(t *testing.T) {
	_, err := ParseConfig("eye.yaml", []byte("folder_output: run\nparticipants: []\nfolder_outptu: x\n"))
	if err == nil || !strings.Contains(err.Error(), "eye.yaml") || !strings.Contains(err.Error(), "folder_outptu") || !strings.Contains(err.Error(), "3") {
		t.Fatalf("unknown key: %v", err)
	}
	_, err = ParseConfig("eye.yaml", []byte("folder_output: run\nscreen_resolution: {pixel_screen_width: 10, pixel_screen_height: 10}\nzoom_dependant_parameters: {M: {n_lines: 2, n_col: 2}}\nparticipants:\n  - name: a\n    zoom: XL\n    tasks: [0]\n"))
	if err == nil || !strings.Contains(err.Error(), "eye.yaml:6") || !strings.Contains(err.Error(), `zoom "XL"`) {
		t.Fatalf("unknown zoom: %v", err)
	}
	if err := RunStep(context.Background(), &Config{}, "getwieghts", Options{}); err == nil || !strings.Contains(err.Error(), "getwieghts") {
		t.Fatalf("unknown step: %v", err)
	}
}

// A snapshot of another file during a session is refused with the snapshot's name,
// line 1 and the file it shows, and nothing is written; quirks.other_file_snapshots:
// skip processes the session without the fixations made while it was shown.
func TestSnapshotForAnotherFile(t *testing.T) {
	q, files := sensemakingFiles(t, 2)
	out := t.TempDir()
	if _, err := Generate(out, GenerateOptions{Questions: q, Files: files, Participants: 1, TasksPerParticipant: 1, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(out, "participants", "dev01", "Snapshots")
	ents, _ := os.ReadDir(snapDir)
	// a snapshot of another file 1 ms after the first (inside the session)
	first := ents[0].Name()
	ms, err := snapshotTime(first)
	if err != nil {
		t.Fatal(err)
	}
	other := snapshotName(int64(ms) + 1)
	if err := os.WriteFile(filepath.Join(snapDir, other), []byte(`C:\study\sensemaking\notes.txt:0`+"\nhello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(filepath.Join(out, "eye.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	err = GetWeights(context.Background(), c, Options{})
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "sensemaking/notes.txt") {
		t.Fatalf("snapshot of another file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "run")); !os.IsNotExist(err) {
		t.Fatalf("a failed getweights left %s behind (%v)", filepath.Join(out, "run"), err)
	}
	c.Quirks.OtherFileSnapshots = "skip"
	if err := GetWeights(context.Background(), c, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotNames(t *testing.T) {
	for _, c := range []struct {
		name string
		ms   float64
	}{
		{"2-04-56-PM-975.txt", (14*3600+4*60+56)*1000 + 975},
		{"2-04-56-PM-975(1).txt", (14*3600+4*60+56)*1000 + 975.1},
		{"12-00-01-AM-5.txt", 1000 + 500},
		{"12-00-01-PM-050.txt", 12*3600*1000 + 1000 + 50},
	} {
		got, err := snapshotTime(c.name)
		if err != nil || got != c.ms {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.ms)
		}
	}
	if _, err := snapshotTime("13-00-00-PM-1.txt"); err == nil {
		t.Error("hour 13 accepted")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("folder_output: run\nscreen_resolution: {pixel_screen_width: 10, pixel_screen_height: 10}\nzoom_dependant_parameters: {M: {n_lines: 2, n_col: 2}}\nparticipants:\n  - name: a\n    zoom: M\n    tasks: [0]\n    manual_screen_coordinates: {x_start_screen_abs: 0, y_start_screen_abs: 0, x_end_screen_abs: 5, y_end_screen_abs: 5}\n"))
	f.Add([]byte("participants: [{name: a, zoom: !!binary x}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, p := range c.Participants {
			if _, ok := c.Zoom[p.Zoom]; !ok || p.ManualScreenCoordinates == nil {
				t.Fatalf("accepted participant %+v", p)
			}
		}
	})
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add("2-04-56-PM-975.txt", []byte("C:\\x\\sensemaking\\a.py:3\n\tdef f():\n"))
	f.Add("12-00-00-AM-1(1).txt", []byte(":\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if strings.ContainsAny(name, "/\\\x00") || name == "" || name == "." || name == ".." {
			return
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return
		}
		s, err := ReadSnapshot(p, []TabReplacement{{Find: "\t", Replace: "  "}})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		if s.FirstLine < 0 || s.Time < 0 || s.Time >= 24*3600*1000+2000 || strings.Contains(s.Text(), "\t") {
			t.Fatalf("snapshot %+v", s)
		}
	})
}
