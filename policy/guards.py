"""The four traps of the originating study, each a check on a region's portfolio that repairs it.

Every guard takes a :class:`~policy.recommender.Portfolio` and returns a :class:`GuardResult`:
whether the portfolio passed as given, the repaired portfolio (the same one when it passed) and
the changes in words (``passed, repaired, changes = guard(portfolio)`` unpacks it).

Substitutes are always drawn from the instruments that fit the cluster's stage, ranked as the
recommender ranks them, and must be *admissible*: not already recommended to that cluster, with a
KPI that has a baseline for the cluster, and not heavy where the model is unsure. So a guard's
repair never trips governance_in_vain, and unbalanced_support never takes away a cluster's only
SME measure where SMEs carry the cluster. :func:`apply_guards` runs them in the order of
:data:`GUARDS`: first the per-measure fixes (governance, SMEs), then the counts (strong over weak),
then the aspect balance, which only swaps and so leaves counts alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from policy.knowledge_base import ASPECTS
from policy.recommender import ClusterCase, Portfolio, Recommendation, rank_instruments


@dataclass(frozen=True)
class GuardConfig:
    max_aspect_share: float = 0.4  # no aspect above this share of a region's recommendations
    min_confidence: float = 0.6  # below this top probability, no heavy instruments
    sme_majority: float = 0.5  # sme_share above this: the cluster needs an SME measure
    # The research notes name renewing clusters among the weak ones the trap starves.
    weak_stages: tuple[str, ...] = ("emerging", "decline", "renewal")
    strong_stages: tuple[str, ...] = ("mature",)


DEFAULT_CONFIG = GuardConfig()


@dataclass(frozen=True)
class GuardResult:
    name: str
    passed: bool  # the portfolio as given satisfied the rule
    portfolio: Portfolio  # repaired (the input itself when passed)
    changes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what could not be checked or repaired

    def __iter__(self) -> Iterator[object]:
        return iter((self.passed, self.portfolio, self.changes))


def _fmt(value: float | None) -> str:
    return "missing" if value is None else f"{value:.3g}"


def _low_confidence(case: ClusterCase, config: GuardConfig) -> bool:
    # A stage read mostly from missing values is no evidence either, however high its probability.
    return case.confidence < config.min_confidence or case.rests_on_gaps


def _why_unsure(case: ClusterCase, config: GuardConfig) -> str:
    if case.confidence < config.min_confidence:
        return f"the model's confidence is {case.confidence:.2f} < {config.min_confidence}"
    return (
        "the stage rests mostly on values missing for it (" + ", ".join(case.missing_drivers) + ")"
    )


def admissible(
    portfolio: Portfolio,
    cluster: str,
    config: GuardConfig = DEFAULT_CONFIG,
    *,
    taken: Iterable[str] | None = None,
    aspect: str | None = None,
    targets: str | None = None,
) -> list[Recommendation]:
    """Substitutes for ``cluster``, best first (see the module docstring)."""
    case = portfolio.cases[cluster]
    taken_ids = (
        {r.id for r in portfolio.recommendations.get(cluster, ())} if taken is None else set(taken)
    )
    low = _low_confidence(case, config)
    return [
        r
        for r in rank_instruments(case, portfolio.kb, portfolio.scoring)
        if r.id not in taken_ids
        and r.baseline is not None
        and not (low and r.intensity == "heavy")
        and (aspect is None or r.aspect == aspect)
        and (targets is None or r.targets == targets)
    ]


def _sme_led(case: ClusterCase, config: GuardConfig) -> bool | None:
    share = case.value("sme_share")
    return None if share is None else share > config.sme_majority


def _squeeze(case: ClusterCase) -> str | None:
    """The research notes' sign of the trap in data: concentration (CR4, else HHI) rising over
    three years while the SME share falls; in words, or None where it does not show."""
    share, before = case.value("sme_share"), case.value("sme_share_lag3")
    if share is None or before is None or share >= before:
        return None
    cr4, hhi = case.value("cr4_change_3y"), case.value("hhi_change_3y")
    if cr4 is not None and cr4 > 0:
        rise = f"the top four firms' share rose {100 * cr4:.1f} points in 3 years"
    elif cr4 is None and hhi is not None and hhi > 0:
        rise = f"concentration (HHI) rose {hhi:.3f} in 3 years"
    else:
        return None
    return f"{rise} while the SME share fell from {before:.0%} to {share:.0%}"


def _sme_need(
    case: ClusterCase, recs: tuple[Recommendation, ...], config: GuardConfig
) -> str | None:
    """Why the cluster's measures must include one aimed at SMEs, or None: SMEs carry it, or
    they are being squeezed while its measures serve large firms."""
    if _sme_led(case, config):
        return f"SMEs hold {case.value('sme_share'):.0%} of employment but no measure targets them"
    squeeze = _squeeze(case)
    if squeeze and any(r.targets == "large_firms" for r in recs):
        return f"{squeeze}, yet its measures serve large firms and none SMEs"
    return None


def governance_in_vain(portfolio: Portfolio, config: GuardConfig = DEFAULT_CONFIG) -> GuardResult:
    """Every measure has a KPI with a baseline; no heavy measure where the model is unsure.

    A failing measure is replaced by the best admissible instrument of the same aspect, else by
    the best admissible one of any aspect (unbalanced_support later restores the balance), and
    dropped only when no instrument that fits the stage is admissible.
    """
    name = "governance_in_vain"
    changes: list[str] = []
    result = portfolio
    for cluster, recs in portfolio.recommendations.items():
        case = portfolio.cases[cluster]
        kept: list[Recommendation] = []
        for position, rec in enumerate(recs):
            if rec.baseline is None:
                problem = f"KPI {rec.kpi} has no baseline for this cluster"
            elif rec.intensity == "heavy" and _low_confidence(case, config):
                problem = f"heavy measure while {_why_unsure(case, config)}"
            else:
                kept.append(rec)
                continue
            taken = {r.id for r in kept} | {r.id for r in recs[position:]}
            options = admissible(result, cluster, config, taken=taken, aspect=rec.aspect)
            options = options or admissible(result, cluster, config, taken=taken)
            if options:
                new = replace(options[0], added_by=name)
                kept.append(new)
                changes.append(
                    f"{cluster}: replaced '{rec.id}' ({problem}) with '{new.id}' "
                    f"({new.aspect}, {new.intensity}; KPI {new.kpi}, "
                    f"baseline {_fmt(new.baseline)})"
                )
            else:
                changes.append(
                    f"{cluster}: dropped '{rec.id}' ({problem}; no admissible instrument fits "
                    f"the {case.stage} stage)"
                )
        if kept != list(recs):
            result = result.with_recommendations(cluster, kept)
    return GuardResult(name, not changes, result, tuple(changes))


def big_enterprise_only(portfolio: Portfolio, config: GuardConfig = DEFAULT_CONFIG) -> GuardResult:
    """Where SMEs hold most employment, the cluster gets at least one SME-targeted measure; so
    does a cluster whose SMEs are being squeezed (the research notes' sign: concentration rising
    over three years while the SME share falls) where its measures serve large firms.

    Repair: the best admissible SME instrument takes the place of the lowest-ranked measure aimed
    at large firms, else of the lowest-ranked one of its own aspect (keeping the aspect balance),
    else of the lowest-ranked measure; a cluster without measures gets it added.
    """
    name = "big_enterprise_only"
    changes: list[str] = []
    notes: list[str] = []
    passed = True
    result = portfolio
    for cluster, recs in portfolio.recommendations.items():
        case = portfolio.cases[cluster]
        if any(r.targets == "smes" for r in recs):
            continue
        why = _sme_need(case, recs, config)
        if why is None:
            if _sme_led(case, config) is None:
                notes.append(f"{cluster}: sme_share unknown; not checked")
            continue
        passed = False
        options = admissible(result, cluster, config, targets="smes")
        if not options:
            notes.append(
                f"{cluster}: no admissible SME-targeted instrument fits the {case.stage} stage"
            )
            continue
        new = replace(options[0], added_by=name)
        if not recs:
            result = result.with_recommendations(cluster, [new])
            changes.append(f"{cluster}: added '{new.id}' ({why})")
            continue
        victim = _lowest(recs, lambda r: r.targets == "large_firms")
        if victim is None:
            victim = _lowest(recs, lambda r, aspect=new.aspect: r.aspect == aspect)
        if victim is None:
            victim = _lowest(recs, lambda r: True)
        updated = list(recs)
        old = updated[victim]
        updated[victim] = new
        result = result.with_recommendations(cluster, updated)
        changes.append(f"{cluster}: replaced '{old.id}' ({old.targets}) with '{new.id}' ({why})")
    return GuardResult(name, passed, result, tuple(changes), tuple(notes))


def _lowest(recs: tuple[Recommendation, ...], keep: Callable[[Recommendation], bool]) -> int | None:
    """Position of the lowest-ranked measure among those ``keep`` accepts (later wins ties)."""
    positions = [i for i, r in enumerate(recs) if keep(r)]
    if not positions:
        return None
    return min(positions, key=lambda i: (recs[i].score, -i))


def _counts(portfolio: Portfolio, clusters: list[str]) -> list[int]:
    return [len(portfolio.recommendations.get(c, ())) for c in clusters]


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else math.nan


def strong_over_weak(portfolio: Portfolio, config: GuardConfig = DEFAULT_CONFIG) -> GuardResult:
    """Emerging, declining and renewing clusters get at least as many measures per cluster as
    mature ones.

    Repair: add the best admissible instruments to the weak stage's clusters, the one with the
    fewest measures first, until the stage's mean reaches the mature mean.
    """
    name = "strong_over_weak"
    changes: list[str] = []
    notes: list[str] = []
    result = portfolio

    def members(stages: tuple[str, ...]) -> list[str]:
        return [c for c, case in portfolio.cases.items() if case.stage in stages]

    strong = members(config.strong_stages)
    if not strong:
        notes.append(f"no {'/'.join(config.strong_stages)} cluster to compare with")
        return GuardResult(name, True, portfolio, (), tuple(notes))
    bar = _mean(_counts(portfolio, strong))
    passed = True
    for stage in config.weak_stages:
        weak = members((stage,))
        if not weak:
            continue
        if _mean(_counts(result, weak)) >= bar - 1e-9:
            continue
        passed = False
        stuck: set[str] = set()
        while _mean(_counts(result, weak)) < bar - 1e-9:
            open_ = [c for c in weak if c not in stuck]
            if not open_:
                notes.append(
                    f"{stage}: no admissible instrument left to add; mean stays "
                    f"{_mean(_counts(result, weak)):.2f} < {bar:.2f}"
                )
                break
            counts = dict(zip(weak, _counts(result, weak), strict=True))
            cluster = min(open_, key=lambda c, n=counts: (n[c], weak.index(c)))
            options = admissible(result, cluster, config)
            if not options:
                stuck.add(cluster)
                continue
            new = replace(options[0], added_by=name)
            result = result.with_recommendations(
                cluster, [*result.recommendations.get(cluster, ()), new]
            )
            changes.append(
                f"{cluster}: added '{new.id}' ({stage} clusters had fewer measures per cluster "
                f"than mature ones: {bar:.2f})"
            )
    return GuardResult(name, passed, result, tuple(changes), tuple(notes))


def _aspect_violations(portfolio: Portfolio, config: GuardConfig) -> tuple[list[str], list[str]]:
    counts = portfolio.count_by_aspect()
    n = sum(counts.values())
    missing = [a for a in ASPECTS if counts[a] == 0]
    over = [a for a in ASPECTS if n and counts[a] > config.max_aspect_share * n + 1e-9]
    return missing, over


def unbalanced_support(portfolio: Portfolio, config: GuardConfig = DEFAULT_CONFIG) -> GuardResult:
    """Every aspect appears in the region's measures and none holds more than the maximum share.

    Repair: swap the lowest-ranked measure of the most frequent aspect for the best admissible
    instrument of the rarest aspect (in the same cluster), until the rule holds. Each swap narrows
    the gap between the two aspects' counts by two, so the loop ends.
    """
    name = "unbalanced_support"
    if not portfolio.recommendations:
        return GuardResult(name, True, portfolio, (), ("no clusters",))
    missing, over = _aspect_violations(portfolio, config)
    if not missing and not over:
        return GuardResult(name, True, portfolio)
    changes: list[str] = []
    notes: list[str] = []
    result = portfolio
    while True:
        missing, over = _aspect_violations(result, config)
        if not missing and not over:
            break
        swap = _best_swap(result, config)
        if swap is None:
            counts = result.count_by_aspect()
            notes.append(
                "could not balance further: "
                + ", ".join(f"{a} {counts[a]}" for a in ASPECTS)
                + f" of {sum(counts.values())} measures"
            )
            break
        cluster, position, new = swap
        recs = list(result.recommendations[cluster])
        old = recs[position]
        recs[position] = new
        result = result.with_recommendations(cluster, recs)
        share = result.count_by_aspect()
        changes.append(
            f"{cluster}: replaced '{old.id}' ({old.aspect}) with '{new.id}' ({new.aspect}); "
            f"{old.aspect} now {share[old.aspect]}, {new.aspect} now {share[new.aspect]} "
            f"of {sum(share.values())} measures"
        )
    return GuardResult(name, False, result, tuple(changes), tuple(notes))


def _best_swap(portfolio: Portfolio, config: GuardConfig) -> tuple[str, int, Recommendation] | None:
    counts = portfolio.count_by_aspect()
    donors = sorted(ASPECTS, key=lambda a: -counts[a])
    receivers = sorted(ASPECTS, key=lambda a: counts[a])
    order = list(portfolio.recommendations)
    for donor in donors:
        for receiver in receivers:
            if counts[donor] - counts[receiver] < 2:
                continue
            pool = [
                (rec.score, -pos, order.index(cluster), cluster, pos)
                for cluster, recs in portfolio.recommendations.items()
                for pos, rec in enumerate(recs)
                if rec.aspect == donor
            ]
            for _, _, _, cluster, pos in sorted(pool):
                recs = portfolio.recommendations[cluster]
                case = portfolio.cases[cluster]
                only_sme = (
                    recs[pos].targets == "smes"
                    and sum(r.targets == "smes" for r in recs) == 1
                    and bool(_sme_led(case, config) or _squeeze(case))
                )
                options = admissible(
                    portfolio,
                    cluster,
                    config,
                    aspect=receiver,
                    targets="smes" if only_sme else None,
                )
                if options:
                    return cluster, pos, replace(options[0], added_by="unbalanced_support")
    return None


GUARDS: tuple[Callable[[Portfolio, GuardConfig], GuardResult], ...] = (
    governance_in_vain,
    big_enterprise_only,
    strong_over_weak,
    unbalanced_support,
)


def apply_guards(
    portfolio: Portfolio, config: GuardConfig = DEFAULT_CONFIG
) -> tuple[Portfolio, list[GuardResult]]:
    """Run every guard in order, each on the portfolio the previous one repaired."""
    results: list[GuardResult] = []
    for guard in GUARDS:
        outcome = guard(portfolio, config)
        results.append(outcome)
        portfolio = outcome.portfolio
    return portfolio, results


def holds(portfolio: Portfolio, config: GuardConfig = DEFAULT_CONFIG) -> dict[str, bool]:
    """Whether each rule holds on ``portfolio`` as it stands (nothing repaired)."""
    return {guard.__name__: guard(portfolio, config).passed for guard in GUARDS}
