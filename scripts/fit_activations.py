#!/usr/bin/env python3
"""Fits the rational tanh of Sources/CRecurKernels/simd.h and prints its coefficients.

tanh(x) ≈ x·P(x²)/Q(x²) with P of degree 6, Q of degree 3 and Q(0) = 1, on 0 < x ≤ 10, for the
least largest relative error: linearised least squares weighted by the previous Q (Loeb), with
Lawson's reweighting towards the minimax fit. The coefficients are then rounded to float32 one at
a time, the ones not yet rounded refitted after each, so the rounding costs little (relative error
of the exact-arithmetic evaluation: 2e-8 with double coefficients, 3.7e-8 with float32 ones). What the
float32 evaluation adds is measured by Tests/kernels/activations.c.

    python3 scripts/fit_activations.py      (numpy)
"""
import numpy as np

P_DEGREE, Q_DEGREE, LIMIT = 6, 3, 10.0

x = np.concatenate([np.linspace(1e-4, LIMIT, 100_000), np.geomspace(1e-4, LIMIT, 10_000)])
s = x * x
target = np.tanh(x) / x  # P(s)/Q(s) ≈ tanh(x)/x, even in x
# Unknowns: p_0 … p_6, q_1 … q_3 in P(s) − target·(Q(s) − 1) = target.
basis = np.stack([s ** k for k in range(P_DEGREE + 1)] + [-target * s ** k for k in range(1, Q_DEGREE + 1)], axis=1)


def split(coefficients):
    return coefficients[:P_DEGREE + 1], np.concatenate([[1.0], coefficients[P_DEGREE + 1:]])


def fit(fixed):
    """The best fit with the coefficients in `fixed` (index → value) held: (largest relative error, coefficients)."""
    free = [i for i in range(basis.shape[1]) if i not in fixed]
    rhs = target - sum((basis[:, i] * value for i, value in fixed.items()), np.zeros_like(s))
    weights, q_previous, best = np.ones_like(s), np.ones_like(s), None
    for iteration in range(300):
        scale = weights / (target * q_previous)  # relative error, linearised around the previous Q
        system = basis[:, free] * scale[:, None]
        norms = np.linalg.norm(system, axis=0)
        solution = np.linalg.lstsq(system / norms, rhs * scale, rcond=None)[0] / norms
        coefficients = np.zeros(basis.shape[1])
        coefficients[list(fixed)] = list(fixed.values())
        coefficients[free] = solution
        p, q = split(coefficients)
        q_previous = np.polyval(q[::-1], s)
        error = (np.polyval(p[::-1], s) / q_previous - target) / target
        if best is None or np.abs(error).max() < best[0]:
            best = (np.abs(error).max(), coefficients)
        if iteration >= 10:  # Lawson: weight where the error is large
            weights = weights * np.sqrt(np.abs(error)) + 1e-300
            weights /= weights.max()
    return best


error, coefficients = fit({})
print(f"/* exact-arithmetic relative error: {error:.2g} with double coefficients, ", end="")
fixed = {}
for index in range(len(coefficients)):
    fixed[index] = float(np.float32(coefficients[index]))
    if len(fixed) < len(coefficients):
        error, coefficients = fit(fixed)
coefficients = np.array([fixed[i] for i in range(len(coefficients))])
p, q = split(coefficients)
error = np.abs((np.polyval(p[::-1], s) / np.polyval(q[::-1], s) - target) / target).max()
print(f"{error:.2g} with float32 ones */")
print("P, highest degree first:", ", ".join(f"{float(np.float32(c)):.9e}f" for c in p[::-1]))
print("Q, highest degree first:", ", ".join(f"{float(np.float32(c)):.9e}f" for c in q[::-1]))
