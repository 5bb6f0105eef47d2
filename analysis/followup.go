package analysis

import (
	"context"
	"math"
)

// FollowUpAllLayers is followup-attention's compute_followup_attention_all_layers (the
// paper's follow-up attention). From a [L,H,N,N] tensor (L ≥ 2) with B[l] = Σ_h A[l,h],
// for each layer pair (l, l+1) and tokens (i, j), with m = max(i, j),
// u = B[l][m:N, i], v = B[l+1][m:N, j]: F[l][i,j] = ⟨u,v⟩ / (‖u‖₂‖v‖₂), 0 when a norm is 0.
// Output [L−1,N,N]. Cost O(L·N³), spread over GOMAXPROCS goroutines; ctx cancels it.
func FollowUpAllLayers(ctx context.Context, att *Tensor) (*Tensor, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, err
	}
	L, N := att.Shape[0], att.Shape[2]
	if L < 2 {
		return nil, inputErr(-1, -1, -1, "follow-up attention needs at least 2 layers, got %d", L)
	}
	b, err := reduceHeads(att, HeadSum)
	if err != nil {
		return nil, err
	}
	// Column-major copies: bt[l][i*N+k] = B[l][k,i], so u and v are contiguous suffixes.
	bt := make([][]float64, L)
	// suf[l][i*(N+1)+m] = Σ_{k≥m} B[l][k,i]² (suffix sums of squares).
	suf := make([][]float64, L)
	for l := 0; l < L; l++ {
		src := b.Matrix(l, 0)
		t := make([]float64, N*N)
		for k := 0; k < N; k++ {
			for i := 0; i < N; i++ {
				t[i*N+k] = src[k*N+i]
			}
		}
		bt[l] = t
		s := make([]float64, N*(N+1))
		for i := 0; i < N; i++ {
			col := t[i*N : (i+1)*N]
			ss := s[i*(N+1) : (i+1)*(N+1)]
			acc := 0.0
			for k := N - 1; k >= 0; k-- {
				acc += col[k] * col[k]
				ss[k] = acc
			}
		}
		suf[l] = s
	}
	out := New(L-1, N, N)
	pairs := make([]int, L-1)
	for l := range pairs {
		pairs[l] = l
	}
	err = rowJobs(ctx, pairs, N, func() func(l, i int) {
		return func(l, i int) {
			followUpRow(out.Matrix(l, 0)[i*N:(i+1)*N], bt[l], bt[l+1], suf[l], suf[l+1], i, N)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// followUpRow fills dst[j] = F[i,j] for one layer pair.
func followUpRow(dst, p, q, sp, sq []float64, i, n int) {
	u := p[i*n : (i+1)*n]
	su := sp[i*(n+1) : (i+1)*(n+1)]
	for j := 0; j < n; j++ {
		m := i
		if j > m {
			m = j
		}
		nu, nv := su[m], sq[j*(n+1)+m]
		if nu == 0 || nv == 0 {
			dst[j] = 0
			continue
		}
		d := dot(u[m:], q[j*n+m:(j+1)*n])
		r := d / (math.Sqrt(nu) * math.Sqrt(nv))
		if math.IsNaN(r) {
			r = 0
		}
		dst[j] = r
	}
}

// dot is a 4-way unrolled dot product of equally long slices.
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}

// FollowUp is compute_followup_attention: Σ_l F[l] over the layer pairs of
// FollowUpAllLayers. Output [N,N].
func FollowUp(ctx context.Context, att *Tensor) (*Tensor, error) {
	return followUpSum(ctx, att, false)
}

// FollowUpScaled is compute_followup_attention_scaled: Σ_l (l+1)·F[l]. Output [N,N].
func FollowUpScaled(ctx context.Context, att *Tensor) (*Tensor, error) {
	return followUpSum(ctx, att, true)
}

func followUpSum(ctx context.Context, att *Tensor, scaled bool) (*Tensor, error) {
	f, err := FollowUpAllLayers(ctx, att)
	if err != nil {
		return nil, err
	}
	N := f.Shape[1]
	out := New(N, N)
	for l := 0; l < f.Shape[0]; l++ {
		w := 1.0
		if scaled {
			w = float64(l + 1)
		}
		for k, v := range f.Matrix(l, 0) {
			out.Data[k] += w * v
		}
	}
	return out, nil
}
