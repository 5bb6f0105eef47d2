"""Independent NumPy implementation of PWCCA, SVCCA and CKA for the Go tests.

Written from the papers' definitions, not from the Go code:
- PWCCA: Morcos, Raghu & Bengio 2018 with the Gallant lab's pyrcca linear CCA as
  BERT-non-text's utils.PWCCA calls it: the generalised symmetric eigenproblem
  LH v = rho RH v solved literally (Cholesky of RH, eigh of L^-1 LH L^-T), the c
  largest eigenvalues, variates X W_x and Y W_y, Pearson correlations (np.corrcoef),
  Q from numpy's reduced QR, alpha_k = sum_i |(X^T Q)_ik|.
  c = min(rank X, rank Y); with reg = 0 a rank-deficient matrix enters the CCA as
  X @ V_r (its r leading right singular directions), alpha still uses X.
- SVCCA: Raghu et al. 2017: centre, SVD, keep the leading directions explaining the
  variance fraction, CCA through Sigma_xx^-1/2 Sigma_xy Sigma_yy^-1/2 (eigh inverse
  square roots), mean correlation.
- CKA: Kornblith et al. 2019's gram_linear / gram_rbf / center_gram / cka (n x n
  Gram matrices); minibatch CKA: Nguyen et al. 2021 with the unbiased HSIC of Song
  et al. 2012.

Reads a JSON list of cases on stdin, writes a JSON list of results on stdout; a
result is null where the measure is undefined (NaN or a failed factorisation).
"""
import json
import sys

import numpy as np


def pwcca(X, Y, reg, centre):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if centre:
        X = X - X.mean(axis=0)
        Y = Y - Y.mean(axis=0)
    rx, ry = np.linalg.matrix_rank(X), np.linalg.matrix_rank(Y)
    if rx == 0 or ry == 0:
        return None
    c = min(rx, ry)
    Xa, Ya = X, Y
    if reg == 0:
        if rx < X.shape[1]:
            Xa = X @ np.linalg.svd(X, full_matrices=False)[2][:rx].T
        if ry < Y.shape[1]:
            Ya = Y @ np.linalg.svd(Y, full_matrices=False)[2][:ry].T
    dx, dy = Xa.shape[1], Ya.shape[1]
    cxx, cyy, cxy = Xa.T @ Xa, Ya.T @ Ya, Xa.T @ Ya
    LH = np.zeros((dx + dy, dx + dy))
    LH[:dx, dx:] = cxy
    LH[dx:, :dx] = cxy.T
    RH = np.zeros((dx + dy, dx + dy))
    RH[:dx, :dx] = cxx + reg * np.eye(dx)
    RH[dx:, dx:] = cyy + reg * np.eye(dy)
    LH = (LH + LH.T) / 2
    RH = (RH + RH.T) / 2
    try:
        L = np.linalg.cholesky(RH)
    except np.linalg.LinAlgError:
        return None
    Li = np.linalg.inv(L)
    M = Li @ LH @ Li.T
    M = (M + M.T) / 2
    w, Z = np.linalg.eigh(M)
    order = np.argsort(w)[::-1][:c]
    V = Li.T @ Z[:, order]
    Ux = Xa @ V[:dx]
    Uy = Ya @ V[dx:]
    eps = np.finfo(np.float64).eps
    for U in (Ux, Uy):
        spread = ((U - U.mean(axis=0)) ** 2).sum(axis=0)
        if np.any(spread <= (64 * eps) ** 2 * (U ** 2).sum(axis=0)):
            return None  # a constant variate: no correlation
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.array([np.corrcoef(Ux[:, k], Uy[:, k])[0, 1] for k in range(c)])
    if np.any(~np.isfinite(rho)):
        return None
    Q, _ = np.linalg.qr(Ux)
    alpha = np.abs(X.T @ Q).sum(axis=0)
    value = float(np.sum(alpha / alpha.sum() * rho))
    return {"value": value, "rho": rho.tolist()}


def svcca(X, Y, frac, dims):
    reduced = []
    for A in (X, Y):
        A = np.asarray(A, dtype=np.float64)
        A = A - A.mean(axis=0)
        U, s, Vt = np.linalg.svd(A, full_matrices=False)
        r = np.linalg.matrix_rank(A)
        if r == 0:
            return None
        s = s[:r]
        if dims > 0:
            k = min(dims, r)
        else:
            cum = np.cumsum(s ** 2)
            k = int(np.argmax(cum >= frac * cum[-1])) + 1
        reduced.append(U[:, :k] * s[:k])
    A, B = reduced

    def inv_sqrt(C):
        w, V = np.linalg.eigh(C)
        return V @ np.diag(w ** -0.5) @ V.T

    T = inv_sqrt(A.T @ A) @ (A.T @ B) @ inv_sqrt(B.T @ B)
    rho = np.minimum(np.linalg.svd(T, compute_uv=False), 1.0)
    return {"value": float(rho.mean()), "rho": rho.tolist()}


def gram_linear(x):
    return x @ x.T


def gram_rbf(x, threshold):
    dot = x @ x.T
    sq = np.diag(dot)
    sqd = -2 * dot + sq[:, None] + sq[None, :]
    m = np.median(sqd)
    if m == 0:
        return None
    return np.exp(-sqd / (2 * threshold ** 2 * m))


def center_gram(g):
    n = g.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return H @ g @ H


def constant(A):
    """Every column varies by at most 64 eps of the largest magnitude."""
    tol = 64 * np.finfo(np.float64).eps * np.max(np.abs(A))
    return bool(np.all(np.abs(A - A[0]) <= 2 * tol))


def cka(X, Y, rbf, threshold):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if constant(X) or constant(Y):
        return None
    if rbf:
        gx, gy = gram_rbf(X, threshold), gram_rbf(Y, threshold)
        if gx is None or gy is None:
            return None
    else:
        gx, gy = gram_linear(X), gram_linear(Y)
    gx, gy = center_gram(gx), center_gram(gy)
    nx, ny = np.linalg.norm(gx), np.linalg.norm(gy)
    if nx == 0 or ny == 0:
        return None
    return {"value": float(np.sum(gx * gy) / (nx * ny))}


def hsic1(K, L):
    n = K.shape[0]
    K = K.copy()
    L = L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ K @ L @ one)) / (n * (n - 3))


def minibatch_cka(X, Y, batch, rbf, threshold):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    xy = xx = yy = 0.0
    for s in range(0, X.shape[0], batch):
        xb, yb = X[s:s + batch], Y[s:s + batch]
        if rbf:
            K, L = gram_rbf(xb, threshold), gram_rbf(yb, threshold)
            if K is None or L is None:
                return None
        else:
            K, L = gram_linear(xb), gram_linear(yb)
        xy += hsic1(K, L)
        xx += hsic1(K, K)
        yy += hsic1(L, L)
    if xx <= 0 or yy <= 0:
        return None
    return {"value": float(xy / np.sqrt(xx * yy))}


def run(case):
    X, Y = np.array(case["x"], dtype=np.float64), np.array(case["y"], dtype=np.float64)
    kind = case["kind"]
    if kind == "pwcca":
        return pwcca(X, Y, case["reg"], not case["uncentred"])
    if kind == "svcca":
        return svcca(X, Y, case["variance"], case["dims"])
    if kind == "cka":
        return cka(X, Y, case["rbf"], case["threshold"])
    if kind == "minibatch":
        return minibatch_cka(X, Y, case["batch"], case["rbf"], case["threshold"])
    raise ValueError(kind)


if __name__ == "__main__":
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)
