"""Fits the exp polynomials of csrc/simd/vector_math.hpp: exp(r) ~ 1 + r + r^2 q(r) on
[-half, half], minimising the maximum relative error (Lawson's iteratively reweighted least
squares in float64, in the variable r / half, with the residual from expm1).
Float32 (the default): half = ln2/2, coefficients rounded to float32.
Run: python tools/fit_exp_poly.py [degree]
--double: the table-driven exp_sum for double lanes, half = ln2/32 (n = round(x 16/ln2)), degree 6
by default, rounded to float64; the error of the rounded polynomial and the table 2^(j/16), correctly
rounded, by mpmath (not a dependency of the package; only for this).
Run: python tools/fit_exp_poly.py --double [degree]
--double-exp: exp for double lanes, half = ln2/2, degree 11 by default: there float64 least squares
cannot reach 1e-17, so Lawson runs in 160-bit mpmath (200 nodes, 100 iterations, a few seconds).
Run: python tools/fit_exp_poly.py --double-exp [degree]
"""

import sys

import numpy as np


def fit(degree: int, half: float, nodes: int = 20000, iterations: int = 300) -> tuple:
    s = np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    r = half * s
    e = np.exp(r)
    a = np.stack([s**k / e for k in range(2, degree + 1)], axis=1)  # residual relative to exp(r)
    b = (np.expm1(r) - r) / e
    weights = np.full(nodes, 1.0 / nodes)
    for _ in range(iterations):
        sw = np.sqrt(weights)
        coef, *_ = np.linalg.lstsq(a * sw[:, None], b * sw, rcond=None)
        err = np.abs(a @ coef - b)
        weights = weights * err
        weights /= weights.sum()
    return [c / half**k for k, c in enumerate(coef, start=2)], err.max()


def fit_mpmath(degree: int, half: float, nodes: int = 200, iterations: int = 100) -> tuple:
    import mpmath as mp

    mp.mp.prec = 160
    h = mp.log(2) / round(np.log(2.0) / half)
    s = [mp.cos(mp.pi * (i + mp.mpf(0.5)) / nodes) for i in range(nodes)]
    e = [mp.exp(h * si) for si in s]
    a = [[si**k / ei for k in range(2, degree + 1)] for si, ei in zip(s, e)]
    b = [(ei - 1 - h * si) / ei for si, ei in zip(s, e)]
    weights = [mp.mpf(1) / nodes] * nodes
    m = degree - 1
    for _ in range(iterations):
        normal, rhs = mp.matrix(m, m), mp.matrix(m, 1)
        for ai, bi, wi in zip(a, b, weights):
            for j in range(m):
                rhs[j] += wi * ai[j] * bi
                for k in range(m):
                    normal[j, k] += wi * ai[j] * ai[k]
        coef = mp.lu_solve(normal, rhs)
        err = [abs(sum(ai[j] * coef[j] for j in range(m)) - bi) for ai, bi in zip(a, b)]
        total = sum(wi * ei for wi, ei in zip(weights, err))
        weights = [wi * ei / total for wi, ei in zip(weights, err)]
    return [coef[j] / h ** (j + 2) for j in range(m)], float(max(err))


def double_table_and_error(coef: list, half: float, table: bool) -> None:
    import mpmath as mp

    mp.mp.prec = 200
    worst = mp.mpf(0)
    for i in range(-4000, 4001):
        r = mp.mpf(half) * i / 4000
        p = 1 + r + sum(mp.mpf(float(c)) * r**k for k, c in enumerate(coef, start=2))
        worst = max(worst, abs(p / mp.exp(r) - 1))
    print(f"  rounded coefficients: max relative error {mp.nstr(worst, 3)} (float64 eps/2 = {2.0**-53:.3e})")
    if not table:
        return
    print("  2^(j/16):", ", ".join(float(mp.power(2, mp.mpf(j) / 16)).hex() for j in range(16)))
    ln2_16 = mp.log(2) / 16
    print(f"  ln2/16 = {float(ln2_16).hex()} + {float(ln2_16 - float(ln2_16))!r}; 16/ln2 = {float(1 / ln2_16)!r}")


if __name__ == "__main__":
    double_exp = "--double-exp" in sys.argv
    double = "--double" in sys.argv or double_exp
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    degree = int(args[0]) if args else (11 if double_exp else 6 if double else 5)
    half = np.log(2.0) / (32 if double and not double_exp else 2)
    coef, err = (fit_mpmath if double_exp else fit)(degree, half)
    eps = 2.0**-53 if double else 2.0**-24
    print(f"degree {degree}: max relative error of the fit {err:.3e} (eps/2 = {eps:.3e})")
    for k, c in enumerate(coef, start=2):
        print(f"  c{k} = {float(c)!r}" if double else f"  c{k} = {np.float32(c)!r}  ({c!r})")
    if double:
        double_table_and_error(coef, half, table=not double_exp)
