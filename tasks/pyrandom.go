package tasks

import (
	"math"
	"math/big"
	"math/bits"
)

// PyRandom is a port of CPython's random.Random (Modules/_randommodule.c and
// Lib/random.py): MT19937 seeded from an integer exactly as random.Random(seed)
// does, with random(), getrandbits, _randbelow (via getrandbits), randint,
// choice, choices, shuffle and sample drawing the same numbers as CPython 3.11+.
// The AttentionSpan generators use it so that samples are bit-identical to the
// original Python generators for the same seed.
type PyRandom struct {
	mt  [624]uint32
	idx int
}

// NewPyRandom returns a generator seeded like random.Random(seed).
func NewPyRandom(seed int64) *PyRandom {
	r := &PyRandom{}
	r.Seed(seed)
	return r
}

// Seed reseeds like random.seed(int): the absolute value is split into 32-bit
// words, least significant first, and fed to init_by_array (zero gives [0]).
func (r *PyRandom) Seed(seed int64) {
	u := uint64(seed)
	if seed < 0 {
		u = uint64(-seed) // two's complement negation; correct for MinInt64 too
	}
	var key []uint32
	for u != 0 {
		key = append(key, uint32(u))
		u >>= 32
	}
	if len(key) == 0 {
		key = []uint32{0}
	}
	r.initByArray(key)
}

func (r *PyRandom) initGenrand(s uint32) {
	r.mt[0] = s
	for i := 1; i < 624; i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	r.idx = 624
}

func (r *PyRandom) initByArray(key []uint32) {
	r.initGenrand(19650218)
	i, j := 1, 0
	k := 624
	if len(key) > k {
		k = len(key)
	}
	for ; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= 624 {
			r.mt[0] = r.mt[623]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k = 623; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= 624 {
			r.mt[0] = r.mt[623]
			i = 1
		}
	}
	r.mt[0] = 0x80000000
	r.idx = 624
}

// Uint32 returns the next raw 32-bit MT19937 output (genrand_uint32).
func (r *PyRandom) Uint32() uint32 {
	const upper, lower = 0x80000000, 0x7fffffff
	if r.idx >= 624 {
		mag := [2]uint32{0, 0x9908b0df}
		var kk int
		for kk = 0; kk < 624-397; kk++ {
			y := (r.mt[kk] & upper) | (r.mt[kk+1] & lower)
			r.mt[kk] = r.mt[kk+397] ^ (y >> 1) ^ mag[y&1]
		}
		for ; kk < 623; kk++ {
			y := (r.mt[kk] & upper) | (r.mt[kk+1] & lower)
			r.mt[kk] = r.mt[kk+(397-624)] ^ (y >> 1) ^ mag[y&1]
		}
		y := (r.mt[623] & upper) | (r.mt[0] & lower)
		r.mt[623] = r.mt[396] ^ (y >> 1) ^ mag[y&1]
		r.idx = 0
	}
	y := r.mt[r.idx]
	r.idx++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// Random returns a float64 in [0, 1) with 53 random bits (random.random()).
func (r *PyRandom) Random() float64 {
	a := r.Uint32() >> 5
	b := r.Uint32() >> 6
	return (float64(a)*67108864.0 + float64(b)) * (1.0 / 9007199254740992.0)
}

// GetRandBits returns a non-negative integer with k random bits
// (random.getrandbits(k)), for 0 <= k <= 64.
func (r *PyRandom) GetRandBits(k int) uint64 {
	if k <= 0 {
		return 0
	}
	if k <= 32 {
		return uint64(r.Uint32() >> (32 - k))
	}
	// CPython fills 32-bit words from the least significant one; the last
	// (most significant) word keeps only its top k%32 bits.
	lo := uint64(r.Uint32())
	k -= 32
	hi := uint64(r.Uint32() >> (32 - k))
	return hi<<32 | lo
}

// RandBelow returns an integer in [0, n) (random._randbelow_with_getrandbits);
// n must be positive.
func (r *PyRandom) RandBelow(n int64) int64 {
	if n <= 0 {
		return 0
	}
	k := bits.Len64(uint64(n))
	v := r.GetRandBits(k)
	for v >= uint64(n) {
		v = r.GetRandBits(k)
	}
	return int64(v)
}

// bigRandBelow is _randbelow for arbitrarily large n (getrandbits of more than
// 64 bits fills 32-bit words from the least significant end).
func (r *PyRandom) bigRandBelow(n *big.Int) *big.Int {
	k := n.BitLen()
	for {
		v := r.bigGetRandBits(k)
		if v.Cmp(n) < 0 {
			return v
		}
	}
}

func (r *PyRandom) bigGetRandBits(k int) *big.Int {
	if k <= 64 {
		return new(big.Int).SetUint64(r.GetRandBits(k))
	}
	words := (k-1)/32 + 1
	v := new(big.Int)
	for i := 0; i < words; i++ {
		w := r.Uint32()
		if i == words-1 && k%32 != 0 {
			w >>= 32 - uint(k%32)
		}
		v.Or(v, new(big.Int).Lsh(new(big.Int).SetUint64(uint64(w)), uint(32*i)))
	}
	return v
}

// RandInt returns an integer in [a, b], both ends included (random.randint).
// It requires a <= b.
func (r *PyRandom) RandInt(a, b int64) int64 {
	return a + r.RandBelow(b-a+1)
}

// BigRandInt is random.randint for bounds beyond int64 (long operands).
func (r *PyRandom) BigRandInt(a, b *big.Int) *big.Int {
	width := new(big.Int).Sub(b, a)
	width.Add(width, big.NewInt(1))
	v := r.bigRandBelow(width)
	return v.Add(v, a)
}

// Choice returns an index into a sequence of length n (random.choice draws
// seq[_randbelow(len(seq))]).
func (r *PyRandom) Choice(n int) int { return int(r.RandBelow(int64(n))) }

// Choices returns k indices drawn with replacement from a sequence of length n
// without weights (random.choices: floor(random() * n) each).
func (r *PyRandom) Choices(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = int(math.Floor(r.Random() * float64(n)))
	}
	return out
}

// ShuffleIndices permutes the n items reachable through swap like random.shuffle.
func (r *PyRandom) ShuffleIndices(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		j := int(r.RandBelow(int64(i + 1)))
		swap(i, j)
	}
}

// Sample returns k distinct indices of a population of size n, in selection
// order, exactly as random.sample(population, k) selects them (both of its
// strategies: pool swapping for small populations, set rejection otherwise).
// It requires 0 <= k <= n.
func (r *PyRandom) Sample(n, k int) []int {
	result := make([]int, k)
	setsize := 21
	if k > 5 {
		setsize += int(math.Pow(4, math.Ceil(math.Log(float64(k*3))/math.Log(4))))
	}
	if n <= setsize {
		pool := make([]int, n)
		for i := range pool {
			pool[i] = i
		}
		for i := 0; i < k; i++ {
			j := int(r.RandBelow(int64(n - i)))
			result[i] = pool[j]
			pool[j] = pool[n-i-1]
		}
		return result
	}
	selected := make(map[int]bool, k)
	for i := 0; i < k; i++ {
		j := int(r.RandBelow(int64(n)))
		for selected[j] {
			j = int(r.RandBelow(int64(n)))
		}
		selected[j] = true
		result[i] = j
	}
	return result
}
