package analysis

import (
	"context"
	"testing"
)

// BenchmarkFollowup is follow-up attention over all layer pairs at L = 12, H = 4,
// N = 1000 (the target: under 10 s on 2 cores).
func BenchmarkFollowup(b *testing.B) {
	att := randomAttention(1, 12, 4, 1000, true)
	b.ResetTimer()
	for b.Loop() {
		if _, err := FollowUpAllLayers(context.Background(), att); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRollout is the head-mean rollout with residual at L = 12, H = 12, N = 512.
func BenchmarkRollout(b *testing.B) {
	att := randomAttention(1, 12, 12, 512, true)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Rollout(att, RolloutOptions{Residual: true}); err != nil {
			b.Fatal(err)
		}
	}
}
