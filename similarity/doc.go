// Package similarity compares representations and attention heads of two models:
// projection-weighted CCA (PWCCA), SVCCA, linear and RBF centred kernel alignment
// (CKA, full and minibatch), bootstrap confidence intervals over tokens, and the
// bipartite matching of attention heads by L1 cost with an exact Hungarian
// assignment.
//
// A representation is a *tensor.Tensor of shape [n, d]: n examples (tokens) as rows,
// d neurons as columns. Two representations compared must have the same n rows, row
// i of one being the same token as row i of the other.
//
// Definitions (X is n×d_x, Y is n×d_y; "centred" subtracts each column's mean):
//
//   - CCA: the canonical correlations ρ_1 ≥ ρ_2 ≥ … are the cosines of the principal
//     angles between the column spaces of X and Y (Hotelling 1936; computed as the
//     singular values of U_xᵀU_y for orthonormal bases U_x, U_y, Björck & Golub 1973).
//   - PWCCA (Morcos, Raghu & Bengio 2018, "Insights on representational similarity in
//     neural networks with canonical correlation", NeurIPS), as BERT-non-text's
//     utils.PWCCA computes it with the Gallant lab's pyrcca (Bilenko & Gallant 2016)
//     linear CCA: C_xx = XᵀX, C_yy = YᵀY, C_xy = XᵀY; the generalised symmetric
//     eigenproblem [[0, C_xy], [C_yx, 0]] v = ρ [[C_xx + rI, 0], [0, C_yy + rI]] v,
//     keeping the c largest ρ with eigenvectors normalised to vᵀ RH v = 1 (W_x, W_y the
//     blocks of v); canonical variates U_x = X W_x, U_y = Y W_y; ρ_k =
//     Pearson(U_x[:,k], U_y[:,k]); Q from the thin QR of U_x; α_k = Σ_i |(XᵀQ)_{ik}|;
//     PWCCA = Σ_k α_k ρ_k / Σ_k α_k, distance 1 − PWCCA. See PWCCA for what is centred
//     and how rank-deficient inputs are handled.
//   - SVCCA (Raghu, Gilmer, Yosinski & Sohl-Dickstein 2017, "SVCCA: Singular Vector
//     Canonical Correlation Analysis for deep learning dynamics and
//     interpretability", NeurIPS): centre, keep the leading singular directions of
//     each representation that explain a fraction (0.99) of its variance, CCA
//     between the reduced representations; SVCCA = mean ρ_k.
//   - CKA (Kornblith, Norouzi, Lee & Hinton 2019, "Similarity of neural network
//     representations revisited", ICML): with centred Gram matrices K̄ = HKH, L̄ = HLH
//     (H = I − 11ᵀ/n), CKA = ⟨K̄, L̄⟩_F / (‖K̄‖_F ‖L̄‖_F). Linear kernel K = XXᵀ gives
//     CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) for centred X, Y; RBF kernel
//     K_ij = exp(−‖x_i − x_j‖² / (2 t² m)) with m the median squared distance and t the
//     threshold (Kornblith's code, t = 1 by default).
//   - Minibatch CKA (Nguyen, Raghu & Kornblith 2021, "Do wide and deep networks learn
//     the same things?", ICLR): CKA = mean_b HSIC₁(K_b, L_b) /
//     sqrt(mean_b HSIC₁(K_b, K_b) · mean_b HSIC₁(L_b, L_b)) over minibatches b, with the
//     unbiased estimator of Song et al. 2012, for K̃, L̃ the Gram matrices with zero
//     diagonal: HSIC₁ = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3)).
//   - Head matching (BERT-non-text's matching.py): C[a,b] = Σ_{i,j} |Y[a,i,j] − X[b,i,j]|
//     between head a of the second model and head b of the first, assignment π of
//     minimum total cost (Kuhn 1955, Munkres 1957; shortest augmenting paths as in
//     Jonker & Volgenant 1987, O(n³)), per-sample total Σ_a C[a, π(a)].
//
// No function returns NaN: an input on which a measure is undefined (a constant
// representation, a singular covariance without regularisation) is an error that
// says so.
package similarity
