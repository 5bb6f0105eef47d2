package repocheck

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/refdata"
)

// readmeBlock is one fenced code block of the README that the test runs.
type readmeBlock struct {
	line int    // line of the opening fence
	lang string // sh, bash, console or python
	code string
	skip string // reason from a <!-- readme-test: skip REASON --> comment before it
}

// skipMark is the comment that marks the next block as not run, with the reason, e.g.
// <!-- readme-test: skip: needs a GPU --> or <!-- readme-test: skip: long (10 min) -->.
var skipMark = regexp.MustCompile(`<!--\s*readme-test:\s*skip:?\s*(.*?)\s*-->`)

// readmeBlocks returns the README's sh/bash/python blocks in order. A block is marked by
// a skip comment on one of the lines just before its fence (blank lines allowed between).
func readmeBlocks(text string) []readmeBlock {
	var blocks []readmeBlock
	var cur *readmeBlock
	pendingSkip := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if strings.HasPrefix(trimmed, "```") {
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			cur.code += line + "\n"
			continue
		}
		if m := skipMark.FindStringSubmatch(line); m != nil {
			pendingSkip = m[1]
			if pendingSkip == "" {
				pendingSkip = "marked skip"
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			lang := strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))
			switch lang {
			case "sh", "bash", "shell", "python":
				cur = &readmeBlock{line: n, lang: lang, skip: pendingSkip}
			default:
				// any other fence (yaml, text, a layout) is skipped to its end
				cur = &readmeBlock{line: n, lang: "-"}
			}
			pendingSkip = ""
			continue
		}
		if trimmed != "" {
			pendingSkip = ""
		}
	}
	out := blocks[:0]
	for _, b := range blocks {
		if b.lang != "-" {
			out = append(out, b)
		}
	}
	return out
}

// TestReadmeBlocksParse checks the block extraction itself on a small README.
func TestReadmeBlocksParse(t *testing.T) {
	text := "# x\n```sh\na\n```\n<!-- readme-test: skip: needs a GPU -->\n\n```bash\nb\n```\n```yaml\nc: 1\n```\n```python\nprint(1)\n```\n"
	got := readmeBlocks(text)
	if len(got) != 3 || got[0].code != "a\n" || got[0].skip != "" || got[1].skip != "needs a GPU" || got[1].code != "b\n" || got[2].lang != "python" || got[2].line != 13 {
		t.Fatalf("blocks %+v", got)
	}
}

// TestReadmeCommands runs every shell (and Python) block of README.md, in order, in a
// fresh clone of the repository's committed state, with bin/ on the PATH as the README says (its Quick start runs make build). Blocks marked <!-- readme-test: skip: REASON --> are
// skipped with that reason (GPU, network, long). Each block runs with `bash -e`, so any
// failing command fails the test, which names the README line and prints the output.
// ../shared (the reference checkpoints some blocks use, as the README explains) is
// linked beside the clone when internal/refdata finds it.
func TestReadmeCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the README test builds the binary in a fresh clone (minutes)")
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not a git checkout: CI runs a clone, the README test needs one", root)
		}
		t.Skipf("%s is not a git checkout (a source archive): nothing to clone", root)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("README.md has no sh/bash/python block")
	}
	tmp := t.TempDir()
	clone := filepath.Join(tmp, "attnscope")
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	runCmd(t, ctx, tmp, "git", "clone", "--quiet", root, clone)
	if ref, ok := refdata.Dir(); ok {
		shared := filepath.Dir(ref)
		if err := os.Symlink(shared, filepath.Join(tmp, "shared")); err != nil {
			t.Fatal(err)
		}
	}
	// The README's Quick start builds bin/attnscope with make build. Go's build cache
	// keys depend on the source folder, so building in the clone would compile every
	// package again (over 10 minutes on 2 busy cores); make's $(GO) is a wrapper that runs
	// `go build` in the repository itself (the clone's committed sources; the same in CI)
	// with the output path in the clone, reusing the build go test just did.
	gowrap := filepath.Join(tmp, "go-build-in-repo")
	if err := os.WriteFile(gowrap, []byte(goWrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(clone, "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, b := range blocks {
		name := fmt.Sprintf("README.md:%d", b.line)
		if b.skip != "" {
			t.Logf("%s: skipped (%s)", name, b.skip)
			continue
		}
		if strings.Contains(b.code, "../shared/") {
			if _, err := os.Stat(filepath.Join(tmp, "shared")); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s uses ../shared, which internal/refdata does not find (set %s)", name, refdata.EnvVar)
				}
				t.Logf("%s: skipped (uses ../shared/reference, not found here; set %s)", name, refdata.EnvVar)
				continue
			}
		}
		start := time.Now()
		var cmd *exec.Cmd
		if b.lang == "python" {
			cmd = exec.CommandContext(ctx, "/usr/bin/python3", "-")
		} else {
			cmd = exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-s")
		}
		cmd.Dir = clone
		cmd.Stdin = strings.NewReader(b.code)
		cmd.Env = append(os.Environ(), "PATH="+path, "GO="+gowrap, "ATTNSCOPE_README_REPO="+root)
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s (%s block) failed after %s: %v\n--- block ---\n%s--- output ---\n%s", name, b.lang, time.Since(start).Round(time.Millisecond), err, b.code, tail(out, 6000))
		}
		t.Logf("%s: ok (%s)", name, time.Since(start).Round(time.Millisecond))
	}
}

// goWrapper is make's $(GO) in the clone: `build` runs in $ATTNSCOPE_README_REPO with a
// relative -o made absolute in the clone; any other go command runs as is.
const goWrapper = `#!/usr/bin/env bash
set -e
[ "$1" = build ] || exec go "$@"
shift
args=()
prev=
for a in "$@"; do
  if [ "$prev" = -o ] && [ "${a#/}" = "$a" ]; then a="$PWD/$a"; fi
  args+=("$a")
  prev=$a
done
cd "$ATTNSCOPE_README_REPO"
exec go build "${args[@]}"
`

// runCmd runs a preparation command (clone, build) and fails the test with its output.
func runCmd(t *testing.T, ctx context.Context, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 6000))
	}
}

// tail keeps the last n bytes of a command's output.
func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append([]byte("...\n"), b[len(b)-n:]...)
}
