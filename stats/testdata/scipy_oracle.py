"""Test oracle for package stats: reads cases (JSON) from argv[1], computes each with
SciPy (and statsmodels for the multiple-comparison corrections) and writes the results
(JSON) to argv[2]. Run by stats/scipy_test.go."""
import json
import sys
import types
import warnings

import numpy as np
import scipy
import scipy.stats as st
from statsmodels.stats.multitest import multipletests

warnings.simplefilter("ignore")


def nan_to_none(v):
    v = float(v)
    return None if np.isnan(v) else v


def diff_means(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


STATS = {"mean": np.mean, "median": np.median}


def run(c):
    k = c["kind"]
    x = np.asarray(c.get("x", []), dtype=float)
    y = np.asarray(c.get("y", []), dtype=float)
    if k == "pearson":
        r = st.pearsonr(x, y)
    elif k == "spearman":
        r = st.spearmanr(x, y)
    elif k == "kendall":
        r = st.kendalltau(x, y)  # variant="b", method="auto"
    elif k == "student":
        r = st.ttest_ind(x, y, equal_var=True)
    elif k == "welch":
        r = st.ttest_ind(x, y, equal_var=False)
    elif k == "mannwhitney":
        r = st.mannwhitneyu(x, y)  # use_continuity=True, method="auto"
    elif k == "wilcoxon":
        # zero_method="wilcox", correction=False; the method Go chose (see Wilcoxon).
        r = st.wilcoxon(x, y, method=c["method"])
    elif k == "permutation":
        r = st.permutation_test((x, y), diff_means, vectorized=True,
                                permutation_type="samples" if c.get("paired") else "independent")
    elif k == "bootstrap":
        prior = types.SimpleNamespace(bootstrap_distribution=np.asarray(c["dist"]))
        r = st.bootstrap((x,), STATS[c["stat"]], n_resamples=0, bootstrap_result=prior,
                         confidence_level=c["level"], method=c["method"])
        ci = r.confidence_interval
        return {"lo": nan_to_none(ci.low), "hi": nan_to_none(ci.high)}
    elif k in ("holm", "fdr_bh"):
        return {"adj": [float(v) for v in multipletests(x, method=k)[1]]}
    else:
        raise ValueError(k)
    return {"stat": nan_to_none(r.statistic), "p": nan_to_none(r.pvalue)}


def main():
    cases = json.load(open(sys.argv[1]))
    out = [run(c) for c in cases]
    json.dump({"scipy": scipy.__version__, "results": out}, open(sys.argv[2], "w"))


main()
