package pyoracle

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	err := check([]string{"no_such_module_attnscope"})
	if err == nil || !strings.Contains(err.Error(), "no_such_module_attnscope") {
		t.Fatalf("check of a missing module = %v, an error naming it expected", err)
	}
	if err := check(nil); err != nil {
		t.Skipf("no python3 here: %v", err)
	}
}
