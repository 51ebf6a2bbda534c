"""Fits the float32 polynomial of csrc/simd/vector_math.hpp: exp(r) ~ 1 + r + r^2 q(r) on
[-ln2/2, ln2/2], minimising the maximum relative error (Lawson's iteratively reweighted least
squares in float64, ample for float32 coefficients), then rounds to float32.
Run: python tools/fit_exp_poly.py [degree]
"""

import sys

import numpy as np


def fit(degree: int, nodes: int = 20000, iterations: int = 300) -> tuple:
    half = np.log(2.0) / 2
    r = half * np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    e = np.exp(r)
    a = np.stack([r**k / e for k in range(2, degree + 1)], axis=1)  # residual relative to exp(r)
    b = (e - 1 - r) / e
    weights = np.full(nodes, 1.0 / nodes)
    for _ in range(iterations):
        sw = np.sqrt(weights)
        coef, *_ = np.linalg.lstsq(a * sw[:, None], b * sw, rcond=None)
        err = np.abs(a @ coef - b)
        weights = weights * err
        weights /= weights.sum()
    return coef, err.max()


if __name__ == "__main__":
    degree = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    coef, err = fit(degree)
    print(f"degree {degree}: max relative error of the fit {err:.3e} (float32 eps/2 = {2.0**-24:.3e})")
    for k, c in enumerate(coef, start=2):
        print(f"  c{k} = {np.float32(c)!r}  ({c!r})")
