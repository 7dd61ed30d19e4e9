"""The function g of the two-agent small-cost expansion for power costs (model.md section 3).

``g`` is the odd solution of ``g'' + g' psi(g/q) = 2x`` with ``psi(y) = sign(y)|y|^(1/(q-1))``, ``g(0) = 0``
and ``g(x) ~ -A x^a`` as ``x -> +inf``, ``A = q (q-1)^((1-q)/q)``, ``a = 2(q-1)/q``. On ``x >= 0`` this is the
equation of model.md (``g <= 0`` there, so ``psi(g/q) = -|g/q|^(1/(q-1))``); ``psi`` extends it to the odd
solution on the whole line.

Why the far boundary condition is harmless: about the asymptote the linearised equation has one slowly
varying solution (a correction ``K x^(-2/q)``) and one growing like ``exp(int |g/q|^(1/(q-1)))``; the
second is what makes shooting stiff. On ``[0, L]`` we impose the equation with ``g''`` taken from the
asymptote at ``x = L`` (the slow manifold), which removes the growing mode without a boundary layer, so
``g'(0)`` does not depend on ``L`` (checked to 1e-10 for L = 12 and 24). For q = 2 the exact solution is
``g(x) = -2x``.

The shipped table ``marketeq/data/leading_order_g.npz`` is made by ``scripts/make_g_table.py``; other q are
solved on demand (about 0.1 s).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.integrate import solve_bvp, solve_ivp
from scipy.interpolate import CubicHermiteSpline

TABLE = Path(__file__).resolve().parents[1] / "data" / "leading_order_g.npz"
TABLE_KEYS = ("q", "x", "g", "gp", "gp0", "max_residual", "max_residual_fd", "asymptote_mismatch")


def amplitude(q: float) -> float:
    """A of the asymptote g ~ -A x^a."""
    return q * (q - 1.0) ** ((1.0 - q) / q)


def exponent(q: float) -> float:
    """a = 2(q-1)/q of the asymptote g ~ -A x^a."""
    return 2.0 * (q - 1.0) / q


def asymptote(x: np.ndarray, q: float, derivative: int = 0) -> np.ndarray:
    """-A x^a (or its first or second derivative) for x > 0."""
    A, a = amplitude(q), exponent(q)
    coef = {0: -A, 1: -A * a, 2: -A * a * (a - 1.0)}[derivative]
    return coef * np.asarray(x, dtype=float) ** (a - derivative)


def _psi(y: np.ndarray, q: float) -> np.ndarray:
    return np.sign(y) * np.abs(y) ** (1.0 / (q - 1.0))


def residual(x: np.ndarray, g: np.ndarray, gp: np.ndarray, gpp: np.ndarray, q: float) -> np.ndarray:
    """g'' + g' psi(g/q) - 2x (= g'' - g'|g/q|^(1/(q-1)) - 2x for x >= 0): zero for the exact solution."""
    return gpp + gp * _psi(g / q, q) - 2.0 * x


@dataclass(frozen=True)
class GSolution:
    """g and g' on a uniform grid of [0, x_end] with the checks of the solution."""

    q: float
    x: np.ndarray
    g: np.ndarray
    gp: np.ndarray
    max_residual: float  # |residual| on the grid, from the collocation solution's own g''
    max_residual_fd: float  # |residual| with g'' by central differences of the tabulated g' (interior)
    asymptote_mismatch: float  # g(x_end) / asymptote(x_end) - 1

    @property
    def gp0(self) -> float:
        return float(self.gp[0])


def fd_residual(x: np.ndarray, g: np.ndarray, gp: np.ndarray, q: float) -> np.ndarray:
    """Residual at interior grid points, g'' by central differences of g' (independent of the solver)."""
    gpp = (gp[2:] - gp[:-2]) / (x[2:] - x[:-2])
    return residual(x[1:-1], g[1:-1], gp[1:-1], gpp, q)


def solve_g(q: float, x_end: float = 16.0, dx: float = 0.005, length: float = 24.0,
            tol: float = 1e-8) -> GSolution:
    """Solve for g on [0, length] with scipy's collocation solver and tabulate it on [0, x_end]."""
    if not 1.0 < q <= 2.0:
        raise ValueError(f"q = {q}: must lie in (1, 2]")
    A, a = amplitude(q), exponent(q)

    def rhs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.vstack([y[1], 2.0 * x - y[1] * _psi(y[0] / q, q)])

    def bc(ya: np.ndarray, yb: np.ndarray) -> np.ndarray:
        slow = asymptote(length, q, 2) + yb[1] * _psi(yb[0] / q, q) - 2.0 * length
        return np.array([ya[0], slow])

    # initial guess: slope -2 near 0 (the q = 2 solution) bending smoothly into the asymptote
    mesh = np.linspace(0.0, length, 400)
    with np.errstate(divide="ignore"):
        ratio = 2.0 * mesh ** (1.0 - a) / A
    guess = -2.0 * mesh / np.sqrt(1.0 + ratio**2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # transient overflow in early Newton steps
        sol = solve_bvp(rhs, bc, mesh, np.vstack([guess, np.gradient(guess, mesh)]), tol=tol,
                        max_nodes=200_000)
    if sol.status != 0:
        raise RuntimeError(f"g for q = {q}: the boundary-value solver failed ({sol.message})")
    x = np.linspace(0.0, x_end, int(round(x_end / dx)) + 1)
    g, gp = sol.sol(x)
    gpp = sol.sol(x, 1)[1]
    g[0] = 0.0
    return GSolution(q, x, g, gp, float(np.abs(residual(x, g, gp, gpp, q)).max()),
                     float(np.abs(fd_residual(x, g, gp, q)).max()),
                     float(g[-1] / asymptote(x_end, q) - 1.0))


def shoot_gp0(q: float, bracket: tuple[float, float] = (-2.5, -1.0), x_max: float = 6.0,
              width: float = 1e-9) -> float:
    """g'(0) by shooting: bisect on the slope, integrating forward with a stiff solver (Radau).

    A slope above the true one turns g upwards (g' > 0), one below it plunges far beneath the asymptote; the
    growing mode makes the classification sharp.
    """
    def side(slope: float) -> int:
        def rhs(x: float, y: np.ndarray) -> list[float]:
            return [y[1], 2.0 * x - y[1] * float(_psi(np.asarray(y[0] / q), q))]

        def rising(x: float, y: np.ndarray) -> float:
            return y[1]

        def plunging(x: float, y: np.ndarray) -> float:
            return y[0] - 3.0 * float(asymptote(max(x, 1e-9), q)) + 5.0

        rising.terminal = plunging.terminal = True  # type: ignore[attr-defined]
        sol = solve_ivp(rhs, (0.0, x_max), [0.0, slope], method="Radau", rtol=1e-11, atol=1e-13,
                        events=[rising, plunging])
        if sol.t_events[0].size:
            return 1
        if sol.t_events[1].size:
            return -1
        return 1 if sol.y[0, -1] > asymptote(x_max, q) else -1

    lo, hi = bracket
    if side(lo) != -1 or side(hi) != 1:
        raise RuntimeError(f"g'(0) for q = {q} is not inside {bracket}")
    while hi - lo > width:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if side(mid) > 0 else (mid, hi)
    return 0.5 * (lo + hi)


class GCurve:
    """g on the whole real line from a tabulated solution: cubic Hermite inside the table, odd symmetry,
    and beyond it the asymptote plus the slow correction ``c (x_end/x)^(2/q)`` that keeps g continuous."""

    def __init__(self, q: float, x: np.ndarray, g: np.ndarray, gp: np.ndarray) -> None:
        self.q = q
        self.x_end = float(x[-1])
        self.spline = CubicHermiteSpline(x, g, gp, extrapolate=False)
        self.tail = float(g[-1] - asymptote(self.x_end, q))
        self.gp0 = float(gp[0])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        ax = np.abs(x)
        inside = ax <= self.x_end
        out = np.empty_like(ax)
        out[inside] = self.spline(ax[inside])
        far = ax[~inside]
        out[~inside] = asymptote(far, self.q) + self.tail * (self.x_end / far) ** (2.0 / self.q)
        return np.sign(x) * out


def load_table(path: Path = TABLE) -> dict[str, np.ndarray]:
    """The shipped table as plain arrays (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: np.asarray(data[key]) for key in data.files}


@lru_cache(maxsize=16)
def g_curve(q: float) -> GCurve:
    """g for one q: from the shipped table when q is tabulated, else solved now."""
    if TABLE.is_file():
        table = load_table()
        match = np.flatnonzero(np.isclose(table["q"], q, rtol=0.0, atol=1e-12))
        if match.size:
            i = int(match[0])
            return GCurve(q, table["x"], table["g"][i], table["gp"][i])
    sol = solve_g(q)
    return GCurve(q, sol.x, sol.g, sol.gp)
