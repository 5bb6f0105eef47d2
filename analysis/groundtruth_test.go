package analysis

import (
	"math"
	"testing"
)

func TestScoreGroundTruth(t *testing.T) {
	// Spearman of [1,2,3,4] vs [1,3,2,4] is 0.8 (followup-attention's comparator test).
	s, err := ScoreGroundTruth([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4})
	if err != nil || math.Abs(s.Spearman-0.8) > 1e-15 {
		t.Fatalf("spearman %v %v", s.Spearman, err)
	}
	// Hand check: a = (0.1, 0.2, 0.3, 0.4), g = (0, 0.5, 0, 1):
	// relevant mass (0.2+0.4)/1 = 0.6, baseline 2/4, weighted 0.2·0.5+0.4 = 0.5;
	// ranks a (1,2,3,4), g (1.5,3,1.5,4): ρ = 3/√(5·4.5) = 0.632456...
	s, err = ScoreGroundTruth([]float64{0.1, 0.2, 0.3, 0.4}, []float64{0, 0.5, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := GroundTruthScore{RelevantMass: 0.6, UniformBaseline: 0.5, WeightedTruth: 0.5, Spearman: 3 / math.Sqrt(5*4.5)}
	for _, c := range [][2]float64{{s.RelevantMass, want.RelevantMass}, {s.UniformBaseline, want.UniformBaseline}, {s.WeightedTruth, want.WeightedTruth}, {s.Spearman, want.Spearman}} {
		if math.Abs(c[0]-c[1]) > 1e-12 {
			t.Errorf("score %+v, want %+v", s, want)
			break
		}
	}
	// No attention: masses undefined; constant input: ρ undefined.
	s, _ = ScoreGroundTruth([]float64{0, 0, 0}, []float64{1, 0, 0.5})
	if !math.IsNaN(s.RelevantMass) || !math.IsNaN(s.WeightedTruth) || !math.IsNaN(s.Spearman) || s.UniformBaseline != 2.0/3 {
		t.Errorf("zero attention: %+v", s)
	}
	if _, err := ScoreGroundTruth([]float64{1}, []float64{1, 2}); err == nil {
		t.Error("lengths 1 and 2 accepted")
	}
}
