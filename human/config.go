// Package human turns eye-tracking sessions of developers reading code into attnscope
// run folders, so that human attention is derived, reported and compared like a
// model's. It re-implements the eye-tracking pipeline of followup-attention
// (githubnext/followup-attention, eye_tracking/post_processing.py and
// eye_tracking/utils.py): Gazepoint fixation exports and VS Code editor snapshots are
// synchronised in time, each fixation is mapped to a character cell of the code area
// and spread over a neighbourhood (attention span), giving character weights
// (getweights), model-token weights (derivetokenweights), the decayed follow-up
// interaction matrix at token and line level (getfollowup, derivefollowupline), the
// positional baseline of human reading (getavgbehavior) and the developers' answers
// (getanswers, getanswersdataset).
//
// Behaviours of the original that are mistakes are available as options (Quirks); the
// default is the intended behaviour.
package human

import (
	"fmt"
	"github.com/attnscope/attnscope/internal/strictyaml"
	"os"
	"path/filepath"
	"regexp"
)

// Config is an eye-tracking config (followup-attention's eye_vXX.yaml). Relative
// folders are resolved against the config file's folder.
type Config struct {
	FolderOutput       string             `yaml:"folder_output"`
	FolderQuestions    string             `yaml:"folder_questions"`
	FolderParticipants string             `yaml:"folder_participants"`
	Tokenization       TokenizationConfig `yaml:"tokenization"`
	Followup           FollowupConfig     `yaml:"followup_attention"`
	Batches            []Batch            `yaml:"batches"`
	Participants       []Participant      `yaml:"participants"`
	Attention          AttentionSpan      `yaml:"attention_parameters"`
	TabReplacements    []TabReplacement   `yaml:"manual_tab_replacements"`
	ScreenResolution   ScreenResolution   `yaml:"screen_resolution"`
	ScreenSize         struct {
		WidthMM  float64 `yaml:"width_mm"`
		HeightMM float64 `yaml:"height_mm"`
	} `yaml:"screen_size"`
	ScreenDistanceMM float64         `yaml:"screen_distance_mm"`
	Zoom             map[string]Zoom `yaml:"zoom_dependant_parameters"`
	Quirks           Quirks          `yaml:"quirks"`

	dir  string // folder of the config file
	path string
	// areas caches the code areas located in screen frames (by zoom and frame).
	areas map[string]ScreenCoordinates
}

// TokenizationConfig lists the models whose tokens receive the character weights.
type TokenizationConfig struct {
	ModelNames   []string `yaml:"model_names"`
	ModelsFolder string   `yaml:"models_folder"`
}

// FollowupConfig sets the human follow-up matrices.
type FollowupConfig struct {
	Decays           []float64 `yaml:"decays"`
	ModelTokenizer   string    `yaml:"model_tokenizer"`
	ModelFolder      string    `yaml:"model_folder"`
	Normalization    *string   `yaml:"normalization"` // nil or "turn_lines_into_prob_distrib"
	ForceModelTokens *bool     `yaml:"force_model_tokens"`
	SaveImages       bool      `yaml:"save_images"` // accepted; images come from attnscope plot
	Levels           []string  `yaml:"levels"`      // "token", "line"
}

// Batch gives the folders of a batch of participants.
type Batch struct {
	BatchNo            int    `yaml:"batch_no"`
	FolderQuestions    string `yaml:"folder_questions"`
	FolderParticipants string `yaml:"folder_participants"`
}

// Participant is one developer with the tasks (fixation file numbers) to process.
type Participant struct {
	Name                    string             `yaml:"name"`
	Zoom                    string             `yaml:"zoom"`
	Tasks                   []int              `yaml:"tasks"`
	BatchNo                 *int               `yaml:"batch_no"`
	ManualScreenCoordinates *ScreenCoordinates `yaml:"manual_screen_coordinates"`
	// ScreenFrame is a frame of the participant's screen recording (PNG, JPEG or GIF;
	// relative to the config) in which the code area is found when there are no
	// manual_screen_coordinates; default <participant folder>/<task>_frame.png (see
	// LocateCodeArea).
	ScreenFrame string `yaml:"screen_frame"`
}

// ScreenCoordinates is the code area on the screen, in pixels.
type ScreenCoordinates struct {
	XStart float64 `yaml:"x_start_screen_abs"`
	YStart float64 `yaml:"y_start_screen_abs"`
	XEnd   float64 `yaml:"x_end_screen_abs"`
	YEnd   float64 `yaml:"y_end_screen_abs"`
}

// AttentionSpan is how many neighbouring cells a fixation covers on each side.
type AttentionSpan struct {
	Horizontal *int `yaml:"horizontal_attention_span"`
	Vertical   *int `yaml:"vertical_attention_span"`
}

// TabReplacement is a text replacement applied to snapshot lines before tabs become
// four spaces.
type TabReplacement struct {
	Find    string `yaml:"find"`
	Replace string `yaml:"replace"`
}

// ScreenResolution is the screen size in pixels.
type ScreenResolution struct {
	Width  int `yaml:"pixel_screen_width"`
	Height int `yaml:"pixel_screen_height"`
}

// Zoom is the character grid of an editor zoom level, with the marker images and
// offsets that locate the code area in a screen frame for participants without
// manual_screen_coordinates (LocateCodeArea).
type Zoom struct {
	NLines             int    `yaml:"n_lines"`
	NCol               int    `yaml:"n_col"`
	PathMarkerTopLeft  string `yaml:"path_marker_top_left"`
	PathMarkerBotRight string `yaml:"path_marker_bottom_right"`
	TopLeftOffsets     []int  `yaml:"top_left_offsets"`
	BottomRightOffsets []int  `yaml:"bottom_right_offsets"`
}

// Quirks turn on behaviours of the original that the default corrects.
type Quirks struct {
	// OutsideCodeAreaFirstCell: a fixation outside the code area counts on the first
	// cell of the grid, as the original's get_char_coordinates returns (0, 0) for it;
	// by default it is skipped.
	OutsideCodeAreaFirstCell bool `yaml:"outside_code_area_first_cell"`
	// OtherFileSnapshots says what a snapshot of another file than the session's
	// within the session does: "error" (default), "skip" (fixations while it is shown
	// are dropped) or "use" (its scroll position is used for the session's file, as
	// the original does).
	OtherFileSnapshots string `yaml:"other_file_snapshots"`
	// OffScreenFixations: "error" (default) refuses a fixation whose FPOGX or FPOGY
	// lies outside [0, 1]; "outside" treats it as a fixation outside the code area
	// (skipped, or on the first cell with OutsideCodeAreaFirstCell, as the original).
	OffScreenFixations string `yaml:"off_screen_fixations"`
	// FixationFileLastDigit finds a task's fixation file by the last digit of its
	// number only, as the original's regex ([0-9])+_fixations.csv does.
	FixationFileLastDigit bool `yaml:"fixation_file_last_digit"`
}

// Normalization names accepted by followup_attention.normalization.
const NormRowsToProb = "turn_lines_into_prob_distrib"

var participantNameRE = regexp.MustCompile(`^[A-Za-z0-9_.+=-]+$`)

// LoadConfig reads and checks an eye-tracking config.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read eye-tracking config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes an eye-tracking config strictly (an unknown key is an error)
// and checks it; errors name the file and line. Relative folders are resolved
// against the folder of name.
func ParseConfig(name string, data []byte) (*Config, error) {
	cfg := &Config{path: name, dir: filepath.Dir(name)}
	file, err := strictyaml.Decode(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, err)
	}
	errAt := func(path, format string, a ...any) error {
		msg := fmt.Sprintf(format, a...)
		if l := strictyaml.Line(file, path); l > 0 {
			return fmt.Errorf("%s:%d: %s", name, l, msg)
		}
		return fmt.Errorf("%s: %s", name, msg)
	}
	if err := cfg.check(errAt); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (c *Config) check(errAt func(path, format string, a ...any) error) error {
	if c.FolderOutput == "" {
		return errAt("$", "folder_output is missing (the run folder to write)")
	}
	if len(c.Participants) == 0 {
		return errAt("$", "no participants (want a list under the key \"participants\")")
	}
	if c.ScreenResolution.Width <= 0 || c.ScreenResolution.Height <= 0 {
		return errAt("$.screen_resolution", "screen_resolution needs positive pixel_screen_width and pixel_screen_height")
	}
	for k, z := range c.Zoom {
		if z.NLines <= 0 || z.NCol <= 0 {
			return errAt("$.zoom_dependant_parameters."+k, "zoom %q needs positive n_lines and n_col", k)
		}
	}
	if h := c.Attention.Horizontal; h != nil && *h < 0 {
		return errAt("$.attention_parameters.horizontal_attention_span", "horizontal_attention_span must be ≥ 0, got %d", *h)
	}
	if v := c.Attention.Vertical; v != nil && *v < 0 {
		return errAt("$.attention_parameters.vertical_attention_span", "vertical_attention_span must be ≥ 0, got %d", *v)
	}
	switch c.Quirks.OtherFileSnapshots {
	case "", "error", "skip", "use":
	default:
		return errAt("$.quirks.other_file_snapshots", "other_file_snapshots must be error, skip or use, got %q", c.Quirks.OtherFileSnapshots)
	}
	switch c.Quirks.OffScreenFixations {
	case "", "error", "outside":
	default:
		return errAt("$.quirks.off_screen_fixations", "off_screen_fixations must be error or outside, got %q", c.Quirks.OffScreenFixations)
	}
	if n := c.Followup.Normalization; n != nil && *n != NormRowsToProb && *n != "" {
		return errAt("$.followup_attention.normalization", "unknown normalization %q (want null or %s)", *n, NormRowsToProb)
	}
	for i, d := range c.Followup.Decays {
		if !(d > 0) {
			return errAt(fmt.Sprintf("$.followup_attention.decays[%d]", i), "decay must be positive, got %g", d)
		}
	}
	for i, l := range c.Followup.Levels {
		if l != "token" && l != "line" {
			return errAt(fmt.Sprintf("$.followup_attention.levels[%d]", i), "unknown level %q (want token or line)", l)
		}
	}
	batches := map[int]bool{}
	for _, b := range c.Batches {
		batches[b.BatchNo] = true
	}
	seen := map[string]bool{}
	for i, p := range c.Participants {
		at := fmt.Sprintf("$.participants[%d]", i)
		if !participantNameRE.MatchString(p.Name) {
			return errAt(at, "participant %d: name %q must be letters, digits and _ . + = -", i+1, p.Name)
		}
		if seen[p.Name] {
			return errAt(at+".name", "participant %q is listed twice", p.Name)
		}
		seen[p.Name] = true
		if _, ok := c.Zoom[p.Zoom]; !ok {
			return errAt(at+".zoom", "participant %q: zoom %q is not in zoom_dependant_parameters", p.Name, p.Zoom)
		}
		if p.ManualScreenCoordinates == nil {
			z := c.Zoom[p.Zoom]
			if z.PathMarkerTopLeft == "" || z.PathMarkerBotRight == "" || len(z.TopLeftOffsets) != 2 || len(z.BottomRightOffsets) != 2 {
				return errAt(at, "participant %q has no manual_screen_coordinates, so zoom %q needs path_marker_top_left, path_marker_bottom_right and two top_left_offsets and bottom_right_offsets to find the code area in a screen frame", p.Name, p.Zoom)
			}
		} else if s := p.ManualScreenCoordinates; !(s.XEnd > s.XStart && s.YEnd > s.YStart) {
			return errAt(at+".manual_screen_coordinates", "participant %q: the code area must have x_end > x_start and y_end > y_start", p.Name)
		}
		if p.BatchNo != nil && len(c.Batches) > 0 && !batches[*p.BatchNo] {
			return errAt(at+".batch_no", "participant %q: batch %d is not in batches", p.Name, *p.BatchNo)
		}
		if len(p.Tasks) == 0 {
			return errAt(at+".tasks", "participant %q has no tasks", p.Name)
		}
	}
	return nil
}

// resolve makes a config-relative path absolute (or leaves an absolute one).
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// OutputDir is the run folder the config writes.
func (c *Config) OutputDir() string { return c.resolve(c.FolderOutput) }

// folders returns the participants' and questions' folders of participant p
// (batch-specific ones when the config has batches).
func (c *Config) folders(p *Participant) (participants, questions string, err error) {
	participants, questions = c.FolderParticipants, c.FolderQuestions
	if len(c.Batches) > 0 && p.BatchNo != nil {
		for _, b := range c.Batches {
			if b.BatchNo == *p.BatchNo {
				participants, questions = b.FolderParticipants, b.FolderQuestions
			}
		}
	}
	if participants == "" || questions == "" {
		return "", "", fmt.Errorf("%s: participant %q: no folder_participants/folder_questions (top level or in its batch)", c.path, p.Name)
	}
	return c.resolve(participants), c.resolve(questions), nil
}

func (c *Config) spans() (h, v int) {
	h, v = 6, 1 // the original function's defaults
	if c.Attention.Horizontal != nil {
		h = *c.Attention.Horizontal
	}
	if c.Attention.Vertical != nil {
		v = *c.Attention.Vertical
	}
	return h, v
}

func (c *Config) forceModelTokens() bool {
	return c.Followup.ForceModelTokens == nil || *c.Followup.ForceModelTokens
}

func (c *Config) levels() (token, line bool) {
	if len(c.Followup.Levels) == 0 {
		return true, true
	}
	for _, l := range c.Followup.Levels {
		token = token || l == "token"
		line = line || l == "line"
	}
	return token, line
}

func (c *Config) decays() []float64 {
	if len(c.Followup.Decays) == 0 {
		return []float64{0.1}
	}
	return c.Followup.Decays
}
