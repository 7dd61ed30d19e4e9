"""The solver settings of a scenario: method, schedule, networks, the link and reliability, each described.

The rules that tie settings to the method and schedule that read them live here too, so that a setting is
either used or refused, never silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import Field, field_validator, model_validator

from marketeq.methods import current_name
from marketeq.scenario.fields import Frozen, Number, Rule, StrictBool

__all__ = ["ADAPTIVE_ONLY", "ROUNDS_ONLY", "RoundPlan", "SolverSettings", "exact_link", "unused_settings"]


IntList = Annotated[list[Annotated[int, Number, Field(ge=0)]], Field(min_length=1)]
RateList = Annotated[
    list[Annotated[float, Number, Field(gt=0, le=10, allow_inf_nan=False)]], Field(min_length=1)
]
HiddenList = Annotated[list[Annotated[int, Number, Field(ge=1, le=4096)]], Field(max_length=16)]
WeightList = Annotated[
    list[Annotated[float, Number, Field(ge=0, allow_inf_nan=False)]], Field(min_length=1)
]


class RoundPlan(NamedTuple):
    """What one round of the alternation does."""

    agents_iterations: int
    market_iterations: int
    agents_lr: float
    market_lr: float
    clearing_weight: float


class SolverSettings(Frozen):
    """Training schedule and networks. Per-round lists repeat their last entry for later rounds."""

    method: Literal["rlink", "joint", "fbsde"] = Field(
        "rlink", description="rlink: the reinforcement-link solver; joint (all networks trained jointly on "
                             "the summed losses) and fbsde (deep FBSDE): the baselines it is compared with")
    schedule: Literal["auto", "rounds", "adaptive"] = Field(
        "auto", description="adaptive (rlink): rounds until the equilibrium residuals fall below the "
                            "tolerance on successively finer time grids, or the budget is spent; rounds: the "
                            "fixed schedule of per-round iterations and learning rates below; auto: adaptive "
                            "for rlink unless a setting of the rounds schedule is given, rounds for the "
                            "baselines")
    tolerance: Annotated[float, Number, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        2e-4, description="adaptive schedule: stop when the round-to-round change of sigma_t and mu_t "
                          "(relative), the normalised terminal error and the link residual (implied "
                          "clearing) are all below this")
    max_rounds: Annotated[int, Number, Field(ge=1, le=10_000)] = Field(
        50, description="adaptive schedule: rounds at most before the run ends as budget_exhausted")
    max_minutes: Annotated[float, Number, Field(gt=0, allow_inf_nan=False)] = Field(
        30.0, description="adaptive schedule: training minutes at most before the run ends as "
                          "budget_exhausted")
    rounds: Annotated[int, Number, Field(ge=1, le=10_000)] = Field(
        10, description="rounds schedule: rounds of agents' then market training")
    mu_mode: Literal["auto", "learned", "known", "implied"] = Field(
        "auto", description="learned (rounds schedule): a mu network tied to the agents by the link; "
                            "known: the return identity (q = 2 or N = 2); implied: mu is the link solved "
                            "exactly on the agents' roll-out; auto: implied on the adaptive schedule, "
                            "learned on the rounds schedule")
    warm_start: StrictBool = Field(
        True, description="rounds schedule: each round's agents continue from the last round's policy; "
                          "false: they start from a fresh policy every round (the market always carries on)")
    batch_size: Annotated[int, Number, Field(ge=2, le=1_000_000)] = Field(
        512, description="paths per agents' iteration (rounds schedule); adaptive schedule with power costs: "
                         "the agents' problem is solved on twice as many fixed paths")
    market_batch_size: Annotated[int, Number, Field(ge=2, le=1_000_000)] = Field(
        4096, description="paths of the agents' frozen roll-out that the market phase fits (rlink)")
    agents_iterations: IntList = Field(
        [300], description="iterations of the agents' phase, per round (the baselines: of the joint phase, "
                           "together with market_iterations)")
    market_iterations: IntList = Field([300], description="iterations of the market phase, per round")
    agents_lr: RateList = Field(
        [1e-3], description="Adam learning rate of the agents' phase, per round (the baselines: of all "
                            "their networks)")
    market_lr: RateList = Field(
        [1e-3], description="Adam learning rate of the market phase, per round (rlink)")
    agents_hidden: HiddenList = Field(
        [64, 64], description="hidden layer widths of the policy network (fbsde: of the backward network)")
    market_hidden: HiddenList = Field([64, 64], description="hidden layer widths of the market's mu network")
    # Per round, like the schedule: a weak penalty while the market is far off (a strong one makes the
    # agents' phase stiff), a strong one at the end, when best responses nearly clear anyway.
    clearing_weight: WeightList = Field(
        [1.0], description="weight of the clearing penalty in the agents' loss, per round (one number: "
                           "every round)")
    # Measured on E3: agents' phases at a constant rate left best responses and clearing noisy.
    lr_decay: Literal["constant", "cosine"] = Field(
        "constant", description="within each phase: constant keeps the round's learning rates; cosine lowers "
                                "them along a half cosine to 1% at the phase's end (the solvers' own "
                                "optimisers; a stable-baselines3 learner keeps its constant rate)")
    eval_every: Annotated[int, Number, Field(ge=1)] = Field(
        50, description="iterations between evaluations on the snapshot paths (progress and live plots)")
    nonlinear: Literal["auto", "on", "off"] = Field(
        "auto", description="an MLP correction on top of the time-dependent linear feedback, in the policy "
                            "and in mu; auto: only for power costs (q < 2), where the equilibrium is "
                            "nonlinear in the state")
    link_form: Literal["auto", "increments", "levels", "relative"] = Field(
        "auto", description="how the link measures clearing (solvers/losses.py link_loss); auto: increments "
                            "for q = 2, the relative residual for power costs")
    # Path-wise, (G')^-1 being nonlinear for power costs would turn the future noise into a bias.
    link_expectation: Literal["auto", "pathwise", "regression"] = Field(
        "auto", description="the agents' marginal benefit in the link: path by path, or its regression on "
                            "the state (the conditional expectation of their first-order condition); auto: "
                            "regression for power costs")
    # Measured: the gradient link loss flattens out near clearing for power costs.
    link_solve: Literal["auto", "gradient", "exact"] = Field(
        "auto", description="how the market phase meets the link when mu is learned: gradient descends the "
                            "link loss; exact solves it for mu by back-substitution (solvers/implied.py) and "
                            "fits the mu network to that; auto: exact for power costs")
    link_weight: Annotated[float, Number, Field(ge=0, allow_inf_nan=False)] = Field(
        1.0, description="weight of the link loss beside the terminal condition (the gradient link)")
    # Measured: on E3 (power costs, ten agents) a free sigma ended at 0.98-0.99, pinned at alpha with the
    # terminal error below the published one; on short quadratic runs pinning slowed the fit of mu_0
    # (quickstart, 240 iterations: 3.4% -> 8.1% off).
    sigma_at_maturity: Literal["free", "pinned"] = Field(
        "free", description="pinned builds the equilibrium invariant sigma_T = alpha into the market "
                            "network; free leaves it to the terminal condition")
    # Measured on E3: with a strong clearing penalty only the shared factor let the agents slow their trading
    # before T as their best responses do (equilibrium gap from 1.2% to under 1% of their gain).
    rate_profile: Literal["free", "shared"] = Field(
        "free", description="the agents' rates as a function of time: free (the policy network alone) or "
                            "shared: times one learned factor of time common to all agents")
    # Reliability (docs/reliability.md).
    checkpoint_every: Annotated[int, Number, Field(ge=0, le=10**9)] = Field(
        0, description="also checkpoint every so many iterations; 0: only at the start of each phase")
    grad_clip: Annotated[float, Number, Field(ge=0, allow_inf_nan=False)] = Field(
        0.0, description="clip the gradient norm of each step to this value; 0: off")
    divergence_retries: Annotated[int, Number, Field(ge=0, le=100)] = Field(
        3, description="roll-backs to the last good state (learning rate halved each time) before a run "
                       "with non-finite losses or gradients ends as diverged")
    agent_learner: Literal["pathwise", "sb3:ppo", "sb3:sac", "sb3:td3"] = Field(
        "pathwise", description="who trains the agents' phase (rlink): gradients through the roll-out, or a "
                                "stable-baselines3 algorithm")

    @model_validator(mode="before")
    @classmethod
    def _old_method_names(cls, data: Any) -> Any:
        """Scenarios (and result files) written with an earlier name of a method still read."""
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            data = {**data, "method": current_name(data["method"])}
        return data

    @property
    def adaptive(self) -> bool:
        """Whether the run uses the adaptive schedule (``schedule``, resolved when it is auto)."""
        if self.schedule != "auto":
            return self.schedule == "adaptive"
        fields = type(self).model_fields
        return self.method == "rlink" and self.mu_mode != "learned" and all(
            getattr(self, name) == fields[name].default for name in ROUNDS_ONLY)

    @property
    def mu_source(self) -> Literal["learned", "known", "implied"]:
        """``mu_mode``, resolved when it is auto: implied on the adaptive schedule, learned otherwise."""
        if self.mu_mode != "auto":
            return self.mu_mode
        return "implied" if self.adaptive else "learned"

    def summary(self) -> str:
        """The schedule in a few words, as ``marketeq validate`` and the app print it."""
        if self.adaptive:
            return (f"adaptive schedule (tolerance {self.tolerance:g}, at most {self.max_rounds} rounds or "
                    f"{self.max_minutes:g} minutes)")
        return f"{self.rounds} rounds, {self.total_iterations} iterations"

    @model_validator(mode="after")
    def _adaptive_settings_apply(self) -> SolverSettings:
        if self.schedule != "adaptive":
            return self
        if self.method != "rlink":
            raise Rule("solver.schedule", "adaptive", f"is a schedule of method 'rlink', not of '{self.method}'; "
                        "use schedule = 'rounds' with the baselines")
        if self.mu_mode == "learned":
            raise Rule("solver.mu_mode", "learned", "trains a mu network by gradient and needs schedule = "
                        "'rounds'; the adaptive schedule takes mu from the link: use 'implied' or 'known'")
        for name in ROUNDS_ONLY:
            value, default = getattr(self, name), type(self).model_fields[name].default
            if value != default:
                raise Rule(f"solver.{name}", value, "is a setting of schedule = 'rounds'; the adaptive schedule "
                            "sets it itself: remove it, or set solver.schedule = 'rounds'")
        return self

    @field_validator("clearing_weight", mode="before")
    @classmethod
    def _one_weight_for_all_rounds(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float) and not isinstance(value, bool) else value

    def round_schedule(self, round_index: int) -> RoundPlan:
        """The plan of a 0-based round; each per-round list repeats its last entry."""

        def pick(values: list[Any]) -> Any:
            return values[min(round_index, len(values) - 1)]

        return RoundPlan(pick(self.agents_iterations), pick(self.market_iterations), pick(self.agents_lr),
                         pick(self.market_lr), pick(self.clearing_weight))

    @property
    def total_iterations(self) -> int:
        return sum(sum(self.round_schedule(r)[:2]) for r in range(self.rounds))


# Settings that only the fixed (rounds) schedule reads; the adaptive one refuses them rather than ignore them.
ROUNDS_ONLY = ("rounds", "warm_start", "market_batch_size", "agents_iterations", "market_iterations", "agents_lr",
               "market_lr", "market_hidden", "clearing_weight", "lr_decay", "nonlinear", "link_form",
               "link_expectation", "link_solve", "link_weight", "sigma_at_maturity", "rate_profile",
               "agent_learner")


# Settings that only the adaptive schedule reads.
ADAPTIVE_ONLY = ("tolerance", "max_rounds", "max_minutes")
# What each baseline never reads (both train every network jointly, one optimiser, one batch size).
_JOINT_UNUSED = ("market_lr", "market_batch_size", "warm_start", "link_expectation", "link_solve")
_FBSDE_UNUSED = (*_JOINT_UNUSED, "agent_learner", "rate_profile", "link_form", "link_weight")
_LINK = ("link_form", "link_expectation", "link_solve", "link_weight")


def exact_link(settings: SolverSettings, q: float) -> bool:
    """Whether the reinforcement-link solver solves the link for mu exactly (then no link loss is trained):
    mu implied, or mu learned with link_solve exact (auto: for power costs, q < 2)."""
    if settings.mu_source == "known":
        return False
    return settings.mu_source == "implied" or settings.link_solve == "exact" or (
        settings.link_solve == "auto" and q != 2.0)


def unused_settings(settings: SolverSettings, q: float) -> dict[str, str]:
    """Settings away from their defaults that the chosen method and mode never read -> why, for one line.

    Only the rounds schedule is covered: the adaptive one refuses its own (``ROUNDS_ONLY``) itself.
    """
    if settings.adaptive:
        return {}
    method = settings.method
    why: dict[str, str] = dict.fromkeys(ADAPTIVE_ONLY, "schedule = 'rounds' does not read it (a setting of "
                                                      "schedule = 'adaptive')")
    if method == "fbsde":
        why |= dict.fromkeys(_FBSDE_UNUSED, "method 'fbsde' does not read it")
    elif method == "joint":
        why |= dict.fromkeys(_JOINT_UNUSED, "method 'joint' does not read it")
    if method != "fbsde" and settings.mu_source == "known":
        why |= dict.fromkeys(_LINK, f"with mu_mode = 'known' method '{method}' trains no link")
    elif method == "rlink" and exact_link(settings, q):
        how = ("mu_mode = 'implied'" if settings.mu_source == "implied" else
               f"link_solve = '{settings.link_solve}'"
               + (" (q < 2)" if settings.link_solve == "auto" else ""))
        exact = f"method 'rlink' with {how} solves the link exactly and trains no link loss"
        why |= {"link_form": exact, "link_weight": exact}
        if settings.mu_source == "implied":
            why["link_solve"] = exact
        if settings.link_expectation == "pathwise":  # the exact link always regresses on the state
            return {"link_expectation": f"{exact} (it always regresses on the state)", **_away(settings, why)}
    if method == "joint" and settings.agent_learner != "pathwise":
        # the joint optimiser trains the policy network, so a stable-baselines3 agent would never learn
        return {"agent_learner": "method 'joint' trains the policy network itself, so these agents would "
                                 "never learn; use 'pathwise', or method = 'rlink'", **_away(settings, why)}
    return _away(settings, why)


def _away(settings: SolverSettings, why: dict[str, str]) -> dict[str, str]:
    """The entries of ``why`` whose setting differs from its default."""
    fields = type(settings).model_fields
    return {name: reason for name, reason in why.items() if getattr(settings, name) != fields[name].default}
