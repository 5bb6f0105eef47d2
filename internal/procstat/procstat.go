// Package procstat reads this process's CPU time and peak resident memory (Linux), for
// benchmarks that print them beside their wall times.
package procstat

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime returns the process's user + system CPU time (0 if unavailable).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// UserTime returns the process's user CPU time alone (0 if unavailable): on a shared
// machine system time also counts page faults and scheduler work.
func UserTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano())
}

// PeakRSS returns VmHWM of /proc/self/status in bytes (0 if unavailable).
func PeakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// ResetPeakRSS resets the kernel's peak-RSS counter (Linux ≥ 4.0); errors are ignored
// (PeakRSS then reports the process-lifetime peak).
func ResetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// MinorFaults returns the process's minor page faults so far (getrusage ru_minflt; 0 if
// unavailable). Fresh memory faults on first touch, so the count per benchmark pass tracks
// new allocations without depending on the machine's load.
func MinorFaults() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Minflt
}
