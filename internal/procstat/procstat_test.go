package procstat

import (
	"runtime"
	"testing"
)

func TestReadings(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc and getrusage as Linux has them")
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	if rss := PeakRSS(); rss < 64<<20 {
		t.Errorf("PeakRSS = %d after touching 64 MiB", rss)
	}
	if CPUTime() <= 0 {
		t.Error("CPUTime = 0 after work")
	}
	runtime.KeepAlive(buf)
}
