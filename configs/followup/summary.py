"""Summary table of the README's end-to-end comparison: mean top-3 overlap (rows where
the human looked on, 0-3) and mean row-wise Spearman rho per comparison CSV written by
`attnscope compare --config configs/followup/compare.yaml`.

usage: python3 configs/followup/summary.py runs/followup/comparisons   (needs pandas)
"""
import glob, os, sys
import pandas as pd
d = sys.argv[1]
rows = []
for f in sorted(glob.glob(os.path.join(d, "followup_top3_*.csv"))):
    df = pd.read_csv(f)
    v = df["top_3.value"]
    v = v[v >= 0]
    rows.append((os.path.basename(f)[:-4], "top-3 overlap (mean of 0–3)", len(df.drop_duplicates([c for c in df.columns if "stem" in c or c in ("source_code","user_name_a","user_name_b","task_number_a","task_number_b")] or list(df.columns[:6]))), v.mean()))
for f in sorted(glob.glob(os.path.join(d, "followup_spearman_*.csv"))):
    df = pd.read_csv(f)
    c = df[[x for x in df.columns if x.endswith(".corr")][0]]
    c = c[c != -1].dropna()
    rows.append((os.path.basename(f)[:-4], "Spearman ρ by row (mean)", len(df.drop_duplicates([c for c in df.columns if "stem" in c or c in ("source_code","user_name_a","user_name_b","task_number_a","task_number_b")] or list(df.columns[:6]))), c.mean()))
print("| comparison | measure | pairs | value |")
print("|---|---|---|---|")
for r in rows:
    print("| `%s` | %s | %d | %.3f |" % r)
