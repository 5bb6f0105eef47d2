package human

import "testing"

// Python: [repr(x) for x in (1.0, 0.25, 1e-05, 1.5e16, 1e16, 123456789.0, 0.0001, -2.5, 1e22, 0.1+0.2)]
func TestPyFloat(t *testing.T) {
	cases := map[float64]string{
		1.0: "1.0", 0.25: "0.25", 1e-05: "1e-05", 1.5e16: "1.5e+16", 1e16: "1e+16",
		123456789.0: "123456789.0", 0.0001: "0.0001", -2.5: "-2.5", 1e22: "1e+22",
		1e15: "1000000000000000.0", 1.234e-7: "1.234e-07",
	}
	a, b := 0.1, 0.2
	cases[a+b] = "0.30000000000000004"
	for v, want := range cases {
		if got := pyFloat(v); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", v, got, want)
		}
	}
}
