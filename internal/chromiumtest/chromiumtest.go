// Package chromiumtest starts Debian's headless Chromium for the browser tests of the
// report and the web view.
package chromiumtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path finds Debian's chromium; the test skips without it locally and fails under CI
// (where .ci/apt-packages installs it).
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found on PATH; CI installs the Debian package chromium (.ci/apt-packages)")
	}
	t.Skip("chromium not found on PATH: install the Debian package chromium to run the browser tests")
	return ""
}

// Start returns a headless Chromium allocator (exe from Path) with its own profile
// folder and no background networking, plus the extra options. The profile is not
// under t.TempDir: Chromium's helper processes may still write to it for a moment
// after the browser is closed, which made t.TempDir's cleanup fail ("directory not
// empty"); the returned cancel removes it with retries.
func Start(t testing.TB, exe string, extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc) {
	t.Helper()
	profile, err := os.MkdirTemp("", "attnscope-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	return actx, func() {
		cancel()
		var err error
		for range 50 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile %s not removed: %v", profile, err)
	}
}
