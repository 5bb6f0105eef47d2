package store

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/pyoracle"
)

// pandas (Debian python3-pandas, run with Debian's /usr/bin/python3) reads the metrics
// table: column names, dtypes and values, NaN and inf included.
func TestMetricsPandasReadsCSV(t *testing.T) {
	py := pyoracle.Python(t, "pandas")
	dir := t.TempDir()
	if err := WriteMetrics(dir, sampleMetricRows()); err != nil {
		t.Fatal(err)
	}
	script := `import sys, pandas as pd
df = pd.read_csv(sys.argv[1])
print(",".join(df.columns))
print(",".join(str(df[c].dtype) for c in df.columns))
for r in df.itertuples(index=False):
    print("|".join(str(v) for v in r))
`
	out, err := exec.Command(py, "-c", script, filepath.Join(dir, MetricsCSV)).CombinedOutput()
	if err != nil {
		t.Fatalf("pandas: %v\n%s", err, out)
	}
	want := "sample,pass,layer,head,metric,value\n" +
		"object,object,int64,int64,object,float64\n" +
		"s,\"odd\"|js|-1|-1|max|inf\n" +
		"s0|entropy|0|-1|entropy_mean|0.3333333333333333\n" +
		"s0|entropy|0|2|entropy_mean|nan\n" +
		"s1|entropy|1|0|entropy_mean|0.25\n"
	if got := string(out); got != want {
		t.Errorf("pandas read\n%s\nwant\n%s", got, want)
	}
	// pandas needs pyarrow or fastparquet for read_parquet; Debian bookworm packages neither.
	if err := exec.Command(py, "-c", "import pyarrow").Run(); err != nil {
		if err := exec.Command(py, "-c", "import fastparquet").Run(); err != nil {
			t.Log("pandas.read_parquet not checked: neither pyarrow nor fastparquet is installed")
			return
		}
	}
	out, err = exec.Command(py, "-c", "import sys, pandas as pd; print(len(pd.read_parquet(sys.argv[1])))", filepath.Join(dir, MetricsParquet)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "4" {
		t.Errorf("pandas.read_parquet: %v\n%s", err, out)
	}
}
