"""Grid solver of the two-agent equilibrium PDE (model.md section 3, "Two agents, any q").

Unknowns ``y(t, phi, w)`` (agent 1's marginal benefit) and ``p(t, phi, w)`` (the price), solved backward from
``y(T) = 0``, ``p(T) = beta T + alpha w`` on the sheared coordinates ``x = phi - phibar_1 + k w``,
``k = xi_1/alpha``
(agent 1's distance to its frictionless holding). In ``(x, w)`` the equations read

    u_t + a(y) u_x + 1/2 (k d_x + d_w)^2 u + source = 0,   sigma = (k d_x + d_w) p,

so the solution varies fast in ``x`` only and the grid can be fine in ``x`` and coarse in ``w``; the band
``|x| <= X`` holds every reachable state, where a rectangle in ``(phi, w)`` would waste most of its points.

One time step (Strang splitting, second order): half a diffusion step, a transport step, half a diffusion
step. Diffusion acts along the direction ``(k, 1)``: it is a Gaussian convolution, computed exactly up to
5-point Gauss-Hermite quadrature over cubic-spline shifts of the grid (every shift is the same for all
points, so it costs a few array slices; no stiffness and no boundary condition inside the band). Transport
is semi-Lagrangian along ``x`` with cubic-spline interpolation and a trapezoidal (Heun) characteristic and
source. Outside the grid the fields continue linearly (odd reflection), which is exact for q = 2, where
``y`` and ``p`` are linear; the band is wide enough that paths never feel it (checked by widening it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import ndimage
from scipy.signal import savgol_filter

W_SDS = 5.5  # w covers +- this many standard deviations of W_T
X_SCALES = 8.0  # x covers +- this many tracking scales (see Problem.x_half_width)
# rows of linear continuation for p's departures in w (|c| dt/dw is a fraction of a cell; the spline
# prefilter's mirror end is 12 rows away, where its error has decayed by 0.27^12)
PAD_W = 12
_GH_NODES, _GH_WEIGHTS = hermegauss(5)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()  # expectation over a standard normal


@dataclass(frozen=True)
class PdeGrid:
    """Resolution: points across the band in x (``n_phi``) and in w (``n_w``), PDE steps per scenario step."""

    n_phi: int = 401
    n_w: int = 31
    substeps: int = 4

    def coarser(self) -> PdeGrid:
        """About half the points in every direction (for the error estimate)."""
        odd = lambda n: n // 2 + 1 - (n // 2) % 2  # noqa: E731 - keeps a node at x = 0 and w = 0
        return PdeGrid(odd(self.n_phi), odd(self.n_w), max(1, self.substeps // 2))


@dataclass(frozen=True)
class Problem:
    """The market of a two-agent scenario as plain floats (hashable: solutions are cached by it)."""

    alpha: float
    beta: float
    supply: float
    horizon: float
    n_steps: int
    gamma: tuple[float, float]
    xi: tuple[float, float]
    lam: tuple[float, float]
    q: float

    @property
    def k(self) -> float:
        return self.xi[0] / self.alpha

    @property
    def gbar(self) -> float:
        return 1.0 / (1.0 / self.gamma[0] + 1.0 / self.gamma[1])

    @property
    def phibar(self) -> float:
        return self.gbar * self.supply / self.gamma[0]

    @property
    def weights(self) -> tuple[float, float]:
        """Return-identity weights (1/lambda_n) / sum_m (1/lambda_m)."""
        inv = (1.0 / self.lam[0], 1.0 / self.lam[1])
        return inv[0] / sum(inv), inv[1] / sum(inv)

    @property
    def w_half_width(self) -> float:
        return W_SDS * math.sqrt(self.horizon)

    @property
    def tracking_scale(self) -> float:
        """The spread of x = phi - phibar_t: 1/c of the leading-order approximation (for q = 2 the stationary
        sd |k| / sqrt(2 kappa) of the tracking error), capped by the no-trade spread |k| sqrt(T)."""
        q, lam = self.q, max(self.lam)
        gamma = 0.5 * (self.gamma[0] + self.gamma[1])
        k = abs(self.k)
        if k == 0:  # no endowment risk: nobody trades and x stays 0; any band will do
            return 1.0
        c = (2.0 ** ((q - 1.0) / (q + 2.0)) * (q * gamma * self.alpha**2 / lam) ** (1.0 / (q + 2.0))
             * k ** (-2.0 * q / (q + 2.0)))
        return min(1.0 / c, k * math.sqrt(self.horizon))

    @property
    def x_half_width(self) -> float:
        return max(X_SCALES * self.tracking_scale, 1e-6)

    def rate(self, y: np.ndarray) -> np.ndarray:
        """Agent 1's trading rate (G_1')^-1(y) = sign(y)|y/lambda_1|^(1/(q-1))."""
        if self.q == 2.0:
            return y / self.lam[0]
        return np.sign(y) * np.abs(y / self.lam[0]) ** (1.0 / (self.q - 1.0))

    def mu_slope(self, phi: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) with the return identity mu = sigma (A sigma + B): A = sum_n w_n gamma_n phi^n,
        B = w sum_n w_n gamma_n xi_n (phi^2 = s - phi)."""
        (w1, w2), (g1, g2), (xi1, xi2) = self.weights, self.gamma, self.xi
        return w1 * g1 * phi + w2 * g2 * (self.supply - phi), (w1 * g1 * xi1 + w2 * g2 * xi2) * w


@dataclass
class Solution:
    """``y`` and ``sigma`` (K+1, n_w, n_phi) at the scenario's times on the grid ``x`` (n_phi,) x
    ``w`` (n_w,); ``s0`` = p(0, phibar_1, 0)."""

    problem: Problem
    grid: PdeGrid
    x: np.ndarray
    w: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    s0: float
    y_euler: np.ndarray | None = None  # agent 1's benefit in the K-step game (see euler_game_benefit)

    def at(self, field: np.ndarray, k: int, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Cubic interpolation of ``field[k]`` at points (x, w); outside the grid the edge value."""
        dx, dw = self.x[1] - self.x[0], self.w[1] - self.w[0]
        coords = np.stack([(np.asarray(w) - self.w[0]) / dw, (np.asarray(x) - self.x[0]) / dx])
        return ndimage.map_coordinates(field[k], coords.reshape(2, -1), order=3, mode="nearest").reshape(
            np.shape(x))


def _bspline_taps(frac: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cubic B-spline weights of the coefficients at offsets -1, 0, 1, 2 for a fractional position."""
    f2, f3 = frac * frac, frac * frac * frac
    return ((1.0 - frac) ** 3 / 6.0, (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0,
            (-3.0 * f3 + 3.0 * f2 + 3.0 * frac + 1.0) / 6.0, f3 / 6.0)


class _Stepper:
    """The operators of one time step on fields (F, n_w, n_x)."""

    def __init__(self, problem: Problem, grid: PdeGrid) -> None:
        if grid.n_phi < 9 or grid.n_w < 9:
            raise ValueError(f"grid {grid.n_phi} x {grid.n_w}: needs at least 9 points in phi and in w")
        self.pb, self.grid = problem, grid
        self.x = np.linspace(-problem.x_half_width, problem.x_half_width, grid.n_phi)
        self.w = np.linspace(-problem.w_half_width, problem.w_half_width, grid.n_w)
        self.dx, self.dw = self.x[1] - self.x[0], self.w[1] - self.w[0]
        self.dt = problem.horizon / (problem.n_steps * grid.substeps)
        self.X, self.W = np.meshgrid(self.x, self.w)
        self.phi = problem.phibar + self.X - problem.k * self.W
        # padding for the diffusion shifts (largest Gauss-Hermite node over half a step) plus spline slack
        spread = abs(_GH_NODES).max() * math.sqrt(self.dt / 2.0)
        self.pad_w = int(math.ceil(spread / self.dw)) + 8
        self.pad_x = int(math.ceil(abs(problem.k) * spread / self.dx)) + 8
        self.pad_t = 16  # transport: departures beyond it are clamped
        self.cols = np.arange(grid.n_phi, dtype=float)[None, :]
        self.rows = np.arange(grid.n_w, dtype=float)[:, None]
        self.A, self.B = problem.mu_slope(self.phi, self.W)

    # --- pieces -----------------------------------------------------------------------------------------
    def sigma(self, p: np.ndarray) -> np.ndarray:
        """p_w at fixed phi = (k d_x + d_w) p inside, continued linearly to the two outermost rows and
        columns.

        d_w: fourth-order central differences. d_x: the derivative of a local quartic fit over 9 points
        (Savitzky-Golay, also fourth order): it amplifies grid-scale noise less than the 5-point stencil,
        which fed back through a(y) -> p -> sigma -> the source of y and blew up at fine x grids. One-sided
        differences at the edges fed the edge value of p back into its own source and blew up too."""
        d_x = savgol_filter(p, 9, 4, deriv=1, delta=self.dx, axis=1)[2:-2, 2:-2]
        d_w = (p[:-4, 2:-2] - 8.0 * p[1:-3, 2:-2] + 8.0 * p[3:-1, 2:-2] - p[4:, 2:-2]) / (12.0 * self.dw)
        return np.pad(self.pb.k * d_x + d_w, 2, mode="reflect", reflect_type="odd")

    def market(self, u: np.ndarray) -> tuple[np.ndarray, ...]:
        """Agent 1's rate a(y); the source of y, f = mu - gamma_1 sigma (sigma phi + xi_1 w); and the price's
        speed along v = (k, 1), c = d mu / d sigma = 2 A sigma + B, with its source g = A sigma^2."""
        sig = self.sigma(u[1])
        mu = sig * (self.A * sig + self.B)
        f = mu - self.pb.gamma[0] * sig * (sig * self.phi + self.pb.xi[0] * self.W)
        return self.pb.rate(u[0]), f, 2.0 * self.A * sig + self.B, self.A * sig * sig

    def diffuse(self, u: np.ndarray, tau: float) -> np.ndarray:
        """E[u(x + k Z sqrt(tau), w + Z sqrt(tau))], Z standard normal, by 5-point Gauss-Hermite
        quadrature."""
        pw, px = self.pad_w, self.pad_x
        c = np.pad(u, ((0, 0), (pw, pw), (px, px)), mode="reflect", reflect_type="odd")
        c = ndimage.spline_filter1d(ndimage.spline_filter1d(c, 3, axis=1, mode="mirror"), 3, axis=2,
                                    mode="mirror")
        out = np.zeros_like(u)
        nw, nx = u.shape[1:]
        for z, weight in zip(_GH_NODES, _GH_WEIGHTS, strict=True):
            if z == 0.0:
                out += weight * u
                continue
            sw = z * math.sqrt(tau) / self.dw
            sx = self.pb.k * z * math.sqrt(tau) / self.dx
            iw, ix = math.floor(sw), math.floor(sx)
            taps_w, taps_x = _bspline_taps(np.float64(sw - iw)), _bspline_taps(np.float64(sx - ix))
            rows = sum(t * c[:, pw + iw + a: pw + iw + a + nw, :] for a, t in zip(range(-1, 3), taps_w,
                                                                                   strict=True))
            out += weight * sum(t * rows[:, :, px + ix + b: px + ix + b + nx]
                                for b, t in zip(range(-1, 3), taps_x, strict=True))
        return out

    def _coefficients(self, fields: np.ndarray, pad_w: int = 0) -> np.ndarray:
        """Cubic-spline coefficients of fields (F, n_w, n_x) padded by linear continuation (pad_w rows; the
        spline is then along w too)."""
        c = np.pad(fields, ((0, 0), (pad_w, pad_w), (self.pad_t, self.pad_t)), mode="reflect",
                   reflect_type="odd")
        c = ndimage.spline_filter1d(c, 3, axis=2, mode="mirror")
        return ndimage.spline_filter1d(c, 3, axis=1, mode="mirror") if pad_w else c

    def gather(self, coef: np.ndarray, shift_x: np.ndarray, shift_w: np.ndarray | None = None) -> np.ndarray:
        """Fields from spline coefficients at (x, w) + shifts in cells (w unchanged when ``shift_w`` is None);
        positions beyond the padding are clamped. One index set serves all fields."""
        nwp, nxp = coef.shape[1:]
        pad_w = (nwp - self.grid.n_w) // 2
        col = np.clip(np.nan_to_num(self.cols + self.pad_t + shift_x), 1.0, nxp - 3.0 - 1e-9)
        i0 = np.floor(col)
        taps_x = _bspline_taps(col - i0)
        if shift_w is None:
            base = i0.astype(np.intp) + ((np.arange(self.grid.n_w) + pad_w) * nxp)[:, None]
            row_taps: list[tuple[int, np.ndarray | float]] = [(0, 1.0)]
        else:
            row = np.clip(np.nan_to_num(self.rows + pad_w + shift_w), 1.0, nwp - 3.0 - 1e-9)
            j0 = np.floor(row)
            base = i0.astype(np.intp) + j0.astype(np.intp) * nxp
            row_taps = list(zip((-nxp, 0, nxp, 2 * nxp), _bspline_taps(row - j0), strict=True))
        # fields last, so one index fetches every field's coefficient from one place in memory
        c, flat = np.ascontiguousarray(coef.reshape(coef.shape[0], -1).T), base.ravel()
        out = np.zeros((flat.size, coef.shape[0]))
        for row_offset, tw in row_taps:
            tw = tw.ravel() if isinstance(tw, np.ndarray) else tw
            for b, tx in zip(range(-1, 3), taps_x, strict=True):
                out += (tw * tx.ravel())[:, None] * c[flat + (row_offset + b)]
        return out.T.reshape(coef.shape[0], *base.shape)

    def transport(self, u: np.ndarray) -> np.ndarray:
        """One semi-Lagrangian step with trapezoidal (Heun) characteristics and sources.

        y moves along x at speed a(y) and gains f dt. In the price equation p_t + a p_x + 1/2 p_vv - mu = 0,
        mu = sigma (A sigma + B) with sigma = p_v is linearised about the current sigma_0 (Newton):
        mu ~ c p_v - g with c = 2 A sigma_0 + B, g = A sigma_0^2, so p is carried along (a - k c, -c) in
        (x, w) and gains g dt. Taking -mu explicitly, with sigma by differences, made an explicit advection
        at speed ~A that blew up where |w| (hence |A|) is large; linearised, its feedback cancels.
        """
        dt, k = self.dt, self.pb.k
        a_o, f_o, c_o, g_o = self.market(u)
        c_y = self._coefficients(np.stack([u[0], f_o, a_o]))
        c_p = self._coefficients(np.stack([u[1], g_o, a_o, c_o]), pad_w=PAD_W)
        y_dep, f_dep0, a_dep = self.gather(c_y, dt * a_o / self.dx)
        p_dep, g_dep0, ap_dep, cp_dep = self.gather(c_p, dt * (a_o - k * c_o) / self.dx, -dt * c_o / self.dw)
        a_pr, f_pr, c_pr, g_pr = self.market(np.stack([y_dep + dt * f_dep0, p_dep + dt * g_dep0]))
        y_new, f_dep = self.gather(c_y[:2], 0.5 * dt * (a_dep + a_pr) / self.dx)
        speed = 0.5 * (cp_dep + c_pr)
        p_new, g_dep = self.gather(c_p[:2], (0.5 * dt * (ap_dep + a_pr) - dt * k * speed) / self.dx,
                                   -dt * speed / self.dw)
        return np.stack([y_new + 0.5 * dt * (f_dep + f_pr), p_new + 0.5 * dt * (g_dep + g_pr)])

    def step(self, u: np.ndarray) -> np.ndarray:
        half = 0.5 * self.dt
        return self.diffuse(self.transport(self.diffuse(u, half)), half)


def euler_game_benefit(solution: Solution, fixed_point: int = 12) -> np.ndarray:
    """Agent 1's marginal benefit (K+1, n_w, n_phi) in the K-step game every run plays, against this market.

    Runs and the equilibrium gap use Euler holdings ``phi_{k+1} = phi_k + phidot_k dt`` and the Euler sum
    ``sum_{k<K} flow_k dt``, so the rate at step k moves the holdings from k + 1 on and its first-order
    condition is ``G'(phidot_k) = Y_k = E_k sum_{j=k+1}^{K-1} f_j dt`` (``Y_{K-1} = 0``), where the continuous
    ``y(t_k)`` is ``E_k int_{t_k}^T f dt``: the two differ by O(dt), and the continuous rates leave an
    O(dt^2) gain to a best response in that game (3.2e-4, 3.8 standard errors, on E2's 100 steps). Backward in
    the scenario's steps, with ``F = f_{k+1} dt + Y_{k+1}`` from the solution's sigma and the return identity:
    ``Y_k(x, w) = E F(x + a(Y_k) dt + k sqrt(dt) Z, w + sqrt(dt) Z)``, the expectation by the PDE's
    diffusion operator (two half steps), the implicit shift by fixed-point iteration. Agent 2's benefit is
    ``-(lambda_2/lambda_1) Y_k``: the return identity makes the weighted flows cancel at every step."""
    pb = solution.problem
    st = _Stepper(pb, PdeGrid(solution.grid.n_phi, solution.grid.n_w, 1))
    dt = pb.horizon / pb.n_steps
    ys = np.zeros_like(solution.sigma)
    for k in range(pb.n_steps - 2, -1, -1):
        sig = solution.sigma[k + 1]
        flow = sig * (st.A * sig + st.B) - pb.gamma[0] * sig * (sig * st.phi + pb.xi[0] * st.W)
        expected = st.diffuse(st.diffuse((flow * dt + ys[k + 1])[None], 0.5 * dt), 0.5 * dt)
        coef = st._coefficients(expected)
        y = expected[0]
        for _ in range(fixed_point):  # contraction: |d shift / d y| dt is a fraction of a cell per unit of y
            y = st.gather(coef, dt * pb.rate(y) / st.dx)[0]
        ys[k] = y
    return ys


def solve_pde(problem: Problem, grid: PdeGrid, retries: int = 3) -> Solution:
    """March from T back to 0; keep y and sigma at the scenario's K+1 times.

    The coupling of y and p through a(y) and sigma is explicit, stable when dt is small enough for the
    x grid (about dt ~ sqrt(dx)); a solution that leaves the sane range is solved again with twice the
    substeps (``Solution.grid`` says what was used)."""
    for _ in range(retries + 1):
        solution = _march(problem, grid)
        if solution is not None:
            return solution
        grid = PdeGrid(grid.n_phi, grid.n_w, 2 * grid.substeps)
    raise RuntimeError(f"the PDE did not stay bounded even with {grid.substeps // 2} substeps per step")


def _march(problem: Problem, grid: PdeGrid) -> Solution | None:
    st = _Stepper(problem, grid)
    K = problem.n_steps
    u = np.stack([np.zeros_like(st.W), problem.beta * problem.horizon + problem.alpha * st.W])
    ys = np.empty((K + 1, grid.n_w, grid.n_phi))
    sigmas = np.empty_like(ys)
    ys[K], sigmas[K] = u[0], st.sigma(u[1])
    bound = 10.0 * abs(problem.alpha) + 1.0
    with np.errstate(all="ignore"):  # a blow-up is detected below, not warned about
        for n in range(K * grid.substeps - 1, -1, -1):
            u = st.step(u)
            if n % grid.substeps == 0:
                k = n // grid.substeps
                ys[k], sigmas[k] = u[0], st.sigma(u[1])
                if not np.isfinite(u).all() or np.abs(sigmas[k]).max() > bound:
                    return None
    sol = Solution(problem, grid, st.x, st.w, ys, sigmas, float("nan"))
    sol.s0 = float(sol.at(u[1:], 0, np.zeros(1), np.zeros(1))[0])
    sol.y_euler = euler_game_benefit(sol)
    return sol
