#!/usr/bin/env python3
"""Independent cross-check of common/dp/rdp_accountant.cc (not run by ctest).

Two computations that share no code with the C++ accountant:
  1. log A_alpha by direct numerical integration with mpmath (the procedure of TF Privacy's
     rdp_accountant_test.py `test_compute_log_a_equals_mp`): A_alpha = E_{x~N(0,s^2)}
     [((1-q) + q exp((2x-1)/(2 s^2)))^alpha].
  2. The TF Privacy / Opacus series (Mironov, Talwar & Zhang 2019, Sec. 3.3) re-typed in
     plain Python with the standard library (math.erfc, math.lgamma) instead of scipy.

Usage: python3 tests/common/dp/rdp_cross_check.py   (needs mpmath; Debian python3-mpmath)
Prints the values the C++ test pins, so a change in either side shows up as a diff.
"""
import math

try:
    import mpmath
except ImportError:  # the series part still runs
    mpmath = None


def log_add(x, y):
    a, b = min(x, y), max(x, y)
    if a == -math.inf:
        return b
    return math.log1p(math.exp(a - b)) + b


def log_sub(x, y):
    if x < y:
        raise ValueError("negative result")
    if y == -math.inf:
        return x
    if x == y:
        return -math.inf
    d = x - y
    if d > 700:
        return x
    return math.log(math.expm1(d)) + y


def log_erfc(x):
    r = math.erfc(x)
    if r > 1e-300:
        return math.log(r)
    # Asymptotic series for large x.
    return (-math.log(math.pi) / 2 - math.log(x) - x * x - 0.5 * x**-2 + 0.625 * x**-4
            - 37.0 / 24.0 * x**-6 + 353.0 / 64.0 * x**-8)


def log_a_int(q, s, a):
    out = -math.inf
    for i in range(a + 1):
        lc = math.lgamma(a + 1) - math.lgamma(i + 1) - math.lgamma(a - i + 1)
        out = log_add(out, lc + i * math.log(q) + (a - i) * math.log1p(-q) + (i * i - i) / (2 * s * s))
    return out


def binom_frac(a, i):
    c = 1.0
    for k in range(i):
        c *= (a - k) / (k + 1)
    return c


def log_a_frac(q, s, a):
    a0 = a1 = -math.inf
    z0 = s * s * math.log(1 / q - 1) + 0.5
    i = 0
    while True:
        coef = binom_frac(a, i)
        lc = math.log(abs(coef))
        j = a - i
        t0 = lc + i * math.log(q) + j * math.log1p(-q)
        t1 = lc + j * math.log(q) + i * math.log1p(-q)
        e0 = math.log(0.5) + log_erfc((i - z0) / (math.sqrt(2) * s))
        e1 = math.log(0.5) + log_erfc((z0 - j) / (math.sqrt(2) * s))
        s0 = t0 + (i * i - i) / (2 * s * s) + e0
        s1 = t1 + (j * j - j) / (2 * s * s) + e1
        if coef > 0:
            a0, a1 = log_add(a0, s0), log_add(a1, s1)
        else:
            a0, a1 = log_sub(a0, s0), log_sub(a1, s1)
        i += 1
        if max(s0, s1) < -30:
            return log_add(a0, a1), i


def log_a(q, s, a):
    if float(a).is_integer():
        return log_a_int(q, s, int(a))
    return log_a_frac(q, s, a)[0]


def rdp(q, z, steps, orders):
    out = []
    for a in orders:
        if q == 1:
            out.append(steps * a / (2 * z * z))
        elif math.isinf(a):
            out.append(math.inf)
        else:
            out.append(steps * log_a(q, z, a) / (a - 1))
    return out


def eps(orders, rdps, delta):
    best = (math.inf, None)
    for a, r in zip(orders, rdps):
        if delta**2 + math.expm1(-r) > 0:
            e = 0.0
        elif a > 1.01:
            e = r + math.log1p(-1 / a) - math.log(delta * a) / (a - 1)
        else:
            e = math.inf
        if e < best[0]:
            best = (e, a)
    return max(0.0, best[0]), best[1]


def log_a_mp(q, s, a):
    mpmath.mp.dps = 50
    f = lambda x: mpmath.npdf(x, mu=0, sigma=s) * ((1 - q) + q * mpmath.exp((2 * x - 1) / (2 * s * s)))**a
    v = mpmath.quad(f, [-mpmath.inf, 0, 1, mpmath.inf], maxdegree=10)
    return float(mpmath.log(v))


TF_DEFAULT = [1.25, 1.5, 1.75, 2., 2.25, 2.5, 3., 3.5, 4., 4.5] + list(range(5, 65)) + [128, 256, 512]
OPACUS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))

if __name__ == "__main__":
    print("compute_rdp(0.01, 2.5, 50, [1.5,2.5,5,50,100]) =", rdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100]))
    print("compute_rdp(0.1, 2, 10, 5) =", rdp(0.1, 2, 10, [5]))
    print("opacus 1.5/0.04/2250 @1e-5 =", eps(OPACUS, rdp(0.04, 1.5, 2250, OPACUS), 1e-5))
    for n, b, z, ep, d in [(60000, 150, 1.3, 15, 1e-5), (100000, 100, 1.0, 30, 1e-7),
                           (100000000, 1024, 0.1, 10, 1e-7)]:
        q = b / n
        steps = int(math.ceil(ep * n / b))
        orders = TF_DEFAULT[:]
        orders.remove(64)
        print("dp_sgd", n, b, z, ep, d, "=", eps(orders, rdp(q, z, steps, orders), d))
    worst = 0
    for q in [1e-4, 1e-3, 0.01, 0.1, 0.5, 0.9]:
        for z in [0.3, 0.5, 0.8, 1.0, 2.0, 5.0]:
            for a in TF_DEFAULT:
                if not float(a).is_integer():
                    worst = max(worst, log_a_frac(q, z, a)[1])
    print("most series terms over the grid:", worst)
    if mpmath is not None:
        for q, s, a in [(1e-7, .1, 1.01), (1e-6, .1, 256), (1e-5, .1, 256.1), (1e-6, 1, 27),
                        (1e-4, 1., 1.5), (1e-3, 1., 2), (.01, 10, 20), (.1, 100, 20.5),
                        (.99, .1, 256), (.999, 100, 256.1), (0.01, 2.5, 1.5), (0.3, 0.8, 2.75)]:
            print("log_a(q=%g, sigma=%g, alpha=%g): series %.12g  mpmath %.12g" %
                  (q, s, a, log_a(q, s, a), log_a_mp(q, s, a)))
