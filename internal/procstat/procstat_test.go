package procstat

import (
	"runtime"
	"testing"
)

func TestReadings(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc and getrusage as Linux has them")
	}
	f0 := MinorFaults()
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	if rss := PeakRSS(); rss < 64<<20 {
		t.Errorf("PeakRSS = %d after touching 64 MiB", rss)
	}
	// 64 MiB of new memory is at least 32 pages even if the kernel backs it with 2 MiB pages.
	if d := MinorFaults() - f0; d < 32 {
		t.Errorf("MinorFaults grew by %d while touching 64 MiB of new memory", d)
	}
	if CPUTime() <= 0 {
		t.Error("CPUTime = 0 after work")
	}
	if u := UserTime(); u <= 0 || u > CPUTime() {
		t.Errorf("UserTime = %v, CPUTime = %v: want 0 < user ≤ user + system", u, CPUTime())
	}
	runtime.KeepAlive(buf)
}
