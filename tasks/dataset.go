package tasks

import "fmt"

// Take draws the first n samples of a generator (the original's
// "first num_samples samples").
func Take(g Generator, n int) ([]*Sample, error) {
	out := make([]*Sample, 0, n)
	for i := 0; i < n; i++ {
		s, err := g.Next()
		if err != nil {
			return nil, fmt.Errorf("%s sample %d: %w", g.Name(), i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Batch is a right-padded batch (generate_dataset of spec §2.2): inputs padded
// with pad, targets with the ignore index, label matrices grown to N×N with
// ignore-index rows and columns. Labels is nil when the first sample has none.
type Batch struct {
	Texts     []string
	InputIDs  [][]int
	TargetIDs [][]int
	Labels    []*Labels
	N         int
}

// Collate pads samples into a batch.
func Collate(samples []*Sample, pad, ignore int) *Batch {
	b := &Batch{}
	for _, s := range samples {
		b.N = max(b.N, len(s.InputIDs))
	}
	withLabels := len(samples) > 0 && samples[0].Labels != nil
	for _, s := range samples {
		in := make([]int, b.N)
		tg := make([]int, b.N)
		for i := range in {
			in[i], tg[i] = pad, ignore
		}
		copy(in, s.InputIDs)
		copy(tg, s.TargetIDs)
		b.Texts = append(b.Texts, s.Text)
		b.InputIDs = append(b.InputIDs, in)
		b.TargetIDs = append(b.TargetIDs, tg)
		if withLabels {
			l := NewLabels(b.N)
			for i := range l.Cells {
				l.Cells[i] = int32(ignore)
			}
			if s.Labels != nil {
				for r := 0; r < s.Labels.N; r++ {
					copy(l.Cells[r*b.N:r*b.N+s.Labels.N], s.Labels.Cells[r*s.Labels.N:(r+1)*s.Labels.N])
				}
			}
			b.Labels = append(b.Labels, l)
		}
	}
	return b
}
