#!/usr/bin/python3
"""The published attention-flow method (Abnar & Zuidema 2020, attention_graph_util.py;
followup-attention's decoder.get_adjacency_matrix + compute_attention_flow), timed.

Usage: networkx_flow.py MATRICES.f64 L N SAMPLES SEED

MATRICES.f64: L*N*N little-endian float64 layer matrices (capacities), as written by
bench/flow/main.go. SAMPLES = 0 runs every (source, input) query, as the original does;
SAMPLES > 0 runs that many random queries and extrapolates the time of all of them.
Prints one JSON object: build_s (adjacency matrix + graph), query_s (mean per query),
queries (all queries of the full matrix), measured (queries run), total_s (build_s +
query_s*queries, measured or extrapolated), values [[u, v, maxflow], ...] for the
queries run (u = source node index, v = input token).
Needs Debian's python3-networkx and python3-numpy (run with /usr/bin/python3).
"""
import json
import sys
import time

import networkx as nx
import numpy as np


def get_adjmat(mat):
    # attention_graph_util.get_adjmat (labels dropped: they do not affect the flow).
    n_layers, length, _ = mat.shape
    adj_mat = np.zeros(((n_layers + 1) * length, (n_layers + 1) * length))
    for i in np.arange(1, n_layers + 1):
        for k_f in np.arange(length):
            index_from = i * length + k_f
            for k_t in np.arange(length):
                index_to = (i - 1) * length + k_t
                adj_mat[index_from][index_to] = mat[i - 1][k_f][k_t]
    return adj_mat


def draw_attention_graph(adjmat):
    # attention_graph_util.draw_attention_graph without the drawing: the graph and its
    # 'capacity' attributes.
    A = adjmat
    G = nx.from_numpy_array(A, create_using=nx.DiGraph())
    for i in np.arange(A.shape[0]):
        for j in np.arange(A.shape[1]):
            nx.set_edge_attributes(G, {(i, j): A[i, j]}, "capacity")
    return G


def main():
    path, L, N, samples, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    mat = np.fromfile(path, dtype="<f8").reshape(L, N, N)
    t0 = time.perf_counter()
    G = draw_attention_graph(get_adjmat(mat))
    build_s = time.perf_counter() - t0

    queries = [(u, v) for u in range(N, (L + 1) * N) for v in range(N)]
    if samples > 0 and samples < len(queries):
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(queries), size=samples, replace=False)
        run = [queries[k] for k in sorted(pick)]
    else:
        run = queries
    values = []
    t0 = time.perf_counter()
    for u, v in run:
        # compute_flows: one Edmonds-Karp max-flow per (non-input node, input node)
        f = nx.maximum_flow_value(G, u, v, flow_func=nx.algorithms.flow.edmonds_karp)
        values.append([u, v, f])
    query_total = time.perf_counter() - t0
    query_s = query_total / len(run)
    print(json.dumps({
        "build_s": build_s,
        "query_s": query_s,
        "queries": len(queries),
        "measured": len(run),
        "total_s": build_s + query_s * len(queries),
        "values": values,
    }))


if __name__ == "__main__":
    main()
