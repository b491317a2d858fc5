"""Chart geometry and number formats of the HTML report: plain numbers for the SVG templates.

Pure functions, no I/O. Every text a chart carries is passed to the templates as data, never as
markup, so Jinja's autoescaping covers it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import pandas as pd

from features.catalogue import FEATURES
from features.stages import STAGES
from policy.recommender import finite

# Okabe-Ito based, distinguishable with the common colour-vision deficiencies.
STAGE_COLOURS: dict[str, str] = {
    "emerging": "#E6A700",
    "growth": "#009E73",
    "mature": "#0072B2",
    "decline": "#D55E00",
    "renewal": "#9B59B6",
}
RELATIVE_GROWTH = "growth_vs_national_3y"  # emp_cagr_3y minus the industry's national one
OWN_GROWTH = "emp_cagr_3y"
ASPECT_TITLES: dict[str, str] = {
    "investment_guidance": "Investment guidance",
    "resource_assembly": "Resource assembly",
    "market_supervision": "Market supervision",
    "public_service": "Public service",
}


# --- numbers -----------------------------------------------------------------------------------


@cache
def _units() -> dict[str, str]:
    return {name: f.unit for name, f in FEATURES.items()}


@cache
def formulas() -> dict[str, str]:
    return {name: f"{f.formula} ({f.unit})" for name, f in FEATURES.items()}


def fmt_number(value: object, digits: int = 3) -> str:
    number = finite(value)
    if number is None:
        return "–"
    if abs(number) >= 10**digits:
        return f"{number:,.0f}"
    if number != 0 and abs(number) < 1e-3:
        return f"{number:.2e}"
    return f"{number:.{digits}g}"


def fmt_percent(value: object, signed: bool = False, digits: int = 1) -> str:
    number = finite(value)
    if number is None:
        return "–"
    return f"{100 * number:{'+' if signed else ''}.{digits}f} %"


def fmt_growth(value: object, relative: bool) -> str:
    """A growth rate per year. Growth relative to the nation is a difference of two rates, so it
    is given in percentage points: "+1.2 %/yr" would read as the cluster's own growth."""
    number = finite(value)
    if number is None:
        return "–"
    return f"{100 * number:+.1f} pp/yr" if relative else f"{fmt_percent(number, signed=True)}/yr"


def fmt_feature(feature: str, value: object) -> str:
    """A feature's value in its catalogue unit: shares as %, rates per year as signed %."""
    number = finite(value)
    if number is None:
        return "missing"
    if feature == RELATIVE_GROWTH:
        return fmt_growth(number, relative=True)
    unit = _units().get(feature, "")
    if unit == "share":
        return fmt_percent(number)
    if unit == "per year":
        return f"{fmt_percent(number, signed=True)}/yr"
    if unit in ("employees", "establishments", "firms") or feature == "employment":
        return f"{number:,.0f}"
    return fmt_number(number)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi], about ``count`` of them."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + 1e-9 * step:
        ticks.append(round(value, 12) + 0.0)
        value += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks inside [lo, hi] (decades only when that gives too many)."""
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1, 2, 5), (1,)):
        ticks = [m * 10.0**d for d in decades for m in mantissas if lo <= m * 10.0**d <= hi]
        if len(ticks) <= 9:
            return ticks
    return ticks


# --- view model: the charts --------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Bubble:
    cluster: str
    anchor: str
    stage: str
    colour: str
    cx: float
    cy: float
    r: float
    tooltip: str
    label: str | None  # None: not labelled on the chart (it would overlap); the tooltip remains
    label_x: float = 0.0
    label_y: float = 0.0
    label_anchor: str = "start"


@dataclass(frozen=True)
class BubbleChart:
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    lq_one: float  # x of the LQ = 1 line
    growth_zero: float | None  # y of the growth = 0 line
    bubbles: list[Bubble]
    x_title: str
    y_title: str
    left_out: list[str]  # clusters not drawn, with why
    # top right, bottom right, top left, bottom left
    quadrants: tuple[str, str, str, str] = ("", "", "", "")
    # Drawn in the chart's own coordinates, below the axis title, so that a key circle scales with
    # the bubbles at every rendered width.
    size_key: list[KeyCircle] = field(default_factory=list)
    key_title: str = "Bubble area: employment"
    key_baseline: float = 0.0  # y of the line the key circles stand on


@dataclass(frozen=True)
class KeyCircle:
    cx: float
    cy: float
    r: float
    label: str  # the employment it stands for
    label_x: float


Box = tuple[float, float, float, float]  # x0, y0, x1, y1
Circle = tuple[float, float, float]  # cx, cy, r
CHAR_WIDTH = 6.4  # px per character of an 11px label, a safe average for Latin text


def _boxes_overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _box_hits_circle(box: Box, circle: Circle) -> bool:
    cx, cy, r = circle
    nearest_x = min(max(cx, box[0]), box[2])
    nearest_y = min(max(cy, box[1]), box[3])
    return (nearest_x - cx) ** 2 + (nearest_y - cy) ** 2 < r * r


def _place_labels(
    names: Sequence[str], circles: Sequence[Circle], plot: Box
) -> list[tuple[str, float, float, str] | None]:
    """A label beside each bubble where one fits: inside the plot, clear of every other label,
    preferably clear of other bubbles too; None where none fits (the tooltip still names it)."""
    placed: list[Box] = []
    out: list[tuple[str, float, float, str] | None] = []
    for i, (name, (cx, cy, r)) in enumerate(zip(names, circles, strict=True)):
        text = name if len(name) <= 26 else name[:25] + "…"
        w, h = CHAR_WIDTH * len(text) + 4, 13.0
        best: tuple[int, Box, tuple[str, float, float, str]] | None = None
        for dx, dy, anchor in (
            (r + 4, 4, "start"),
            (-r - 4, 4, "end"),
            (0, -r - 5, "middle"),
            (0, r + 13, "middle"),
            (r * 0.7 + 3, -r * 0.7 - 2, "start"),
            (r * 0.7 + 3, r * 0.7 + 10, "start"),
        ):
            x0 = cx + dx - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
            box = (x0, cy + dy - 10, x0 + w, cy + dy - 10 + h)
            inside = box[0] >= plot[0] and box[2] <= plot[2] and box[1] >= plot[1]
            if not (inside and box[3] <= plot[3]) or any(_boxes_overlap(box, b) for b in placed):
                continue
            hits = sum(_box_hits_circle(box, c) for j, c in enumerate(circles) if j != i)
            if best is None or hits < best[0]:
                best = (hits, box, (text, cx + dx, cy + dy, anchor))
            if hits == 0:
                break
        if best is None:
            out.append(None)
        else:
            placed.append(best[1])
            out.append(best[2])
    return out


def _size_key(
    radius: Callable[[float], float], emp_max: float, r_min: float, x0: float, y0: float
) -> tuple[list[KeyCircle], float]:
    """Up to three round employment figures below the largest, at the radius the bubbles' own
    scale gives them, standing in a row from (x0, y0) on; and the baseline they stand on."""
    if emp_max < 1:
        return [], y0
    top = max(m * 10.0**e for e in range(0, 10) for m in (1, 2, 5) if m * 10.0**e <= emp_max)
    sizes = [(n, radius(n)) for n in (top, top / 10, top / 100) if n >= 1]
    sizes = [(n, r) for n, r in sizes if r >= r_min][:3]
    baseline = y0 + 2 * (sizes[0][1] if sizes else 0.0) + 4
    key, x = [], x0
    for n, r in sizes:
        label = f"{n:,.0f}"
        key.append(
            KeyCircle(
                round(x + r, 1), round(baseline - r, 1), round(r, 1), label, round(x + 2 * r + 4, 1)
            )
        )
        x += 2 * r + 4 + CHAR_WIDTH * len(label) + 18
    return key, baseline


def _growth_tick(value: float, relative: bool, digits: int) -> str:
    if relative:
        return f"{100 * value:{'+' if value else ''}.{digits}f} pp"
    return fmt_percent(value, signed=value != 0, digits=digits)


def bubble_chart(points: pd.DataFrame, growth_column: str) -> BubbleChart:
    """LQ (log) x growth, bubble area proportional to employment, colour the stage.

    ``points``: cluster, anchor, stage, lq, growth (of ``growth_column``), employment, and
    optionally own_growth (emp_cagr_3y, for the tooltip); one row per cluster.
    """
    relative = growth_column == RELATIVE_GROWTH
    width, height = 780, 470
    left, top, right, bottom = 70.0, 16.0, width - 20.0, height - 56.0
    left_out = []
    usable = []
    for p in points.to_dict("records"):
        lq, growth = finite(p["lq"]), finite(p["growth"])
        if lq is None or lq <= 0:
            left_out.append(f"{p['cluster']} (no location quotient)")
        elif growth is None:
            left_out.append(f"{p['cluster']} (no {growth_column})")
        else:
            usable.append({**p, "lq": lq, "growth": growth, "employment": finite(p["employment"])})

    lqs = [p["lq"] for p in usable] or [1.0]
    x_lo, x_hi = min(*lqs, 1.0) / 1.35, max(*lqs, 1.0) * 1.35
    growths = [p["growth"] for p in usable] or [0.0]
    y_lo, y_hi = min(*growths, 0.0), max(*growths, 0.0)
    pad = (y_hi - y_lo) * 0.12 or 0.05
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def sx(v: float) -> float:
        span = math.log(x_hi) - math.log(x_lo)
        return left + (math.log(v) - math.log(x_lo)) / span * (right - left)

    def sy(v: float) -> float:
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    emp_max = max((p["employment"] or 0.0 for p in usable), default=0.0)
    r_max, r_min = 34.0, 3.0

    def radius(emp: float) -> float:
        return r_max * math.sqrt(emp / emp_max)

    # Largest first: small bubbles are drawn on top of large ones and stay clickable.
    usable.sort(key=lambda q: -(q["employment"] or 0.0))
    circles = []
    for p in usable:
        emp = p["employment"]
        r = radius(emp) if emp and emp_max > 0 else 6.0
        circles.append((sx(p["lq"]), sy(p["growth"]), max(r, r_min)))
    labels = _place_labels([str(p["cluster"]) for p in usable], circles, (left, top, right, bottom))
    bubbles: list[Bubble] = []
    for p, (cx, cy, r), placed in zip(usable, circles, labels, strict=True):
        emp = p["employment"]
        growth = (
            f"growth vs nation {fmt_growth(p['growth'], relative=True)}"
            if relative
            else f"employment growth {fmt_growth(p['growth'], relative=False)}"
        )
        if relative and "own_growth" in p:
            growth += f"; employment growth {fmt_growth(p['own_growth'], relative=False)}"
        tooltip = f"{p['cluster']}: {p['stage']}; LQ {p['lq']:.2f}; {growth}; employment " + (
            f"{emp:,.0f}" if emp is not None else "unknown"
        )
        text, lx, ly, anchor = placed if placed else (None, 0.0, 0.0, "start")
        bubbles.append(
            Bubble(
                cluster=str(p["cluster"]),
                anchor=str(p["anchor"]),
                stage=str(p["stage"]),
                colour=STAGE_COLOURS.get(str(p["stage"]), "#777777"),
                cx=round(cx, 1),
                cy=round(cy, 1),
                r=round(r, 1),
                tooltip=tooltip,
                label=text,
                label_x=round(lx, 1),
                label_y=round(ly, 1),
                label_anchor=anchor,
            )
        )
    x_ticks = [Tick(round(sx(t), 1), f"{t:g}") for t in log_ticks(x_lo, x_hi)]
    y_values = nice_ticks(y_lo, y_hi)
    whole = all(abs(100 * t - round(100 * t)) < 1e-6 for t in y_values)
    y_ticks = [
        Tick(round(sy(t), 1), _growth_tick(t, relative, 0 if whole else 1)) for t in y_values
    ]
    key_title = "Bubble area: employment"
    key, key_baseline = _size_key(
        radius, emp_max, r_min, left + CHAR_WIDTH * len(key_title) + 14, float(height)
    )
    ahead = "outgrowing the nation" if relative else "growing"
    behind = "lagging the nation" if relative else "shrinking"
    return BubbleChart(
        width=width,
        height=int(math.ceil(key_baseline + 8)) if key else height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        lq_one=round(sx(1.0), 1),
        growth_zero=round(sy(0.0), 1),
        bubbles=bubbles,
        x_title="Location quotient (log scale; 1 = as specialised as the nation)",
        y_title=(
            "Growth vs. the industry nationally (pp per year, 3 years)"
            if relative
            else "Employment growth per year (3 years)"
        ),
        left_out=left_out,
        quadrants=(
            f"specialised, {ahead}",
            f"specialised, {behind}",
            f"not specialised, {ahead}",
            f"not specialised, {behind}",
        ),
        size_key=key,
        key_title=key_title,
        key_baseline=round(key_baseline, 1),
    )


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    x: float
    y: float
    width: float
    colour: str
    strong: bool = False


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: float
    track: float  # the width that stands for the largest value
    bars: list[Bar]
    marker: float | None = None  # x of a limit line (e.g. the largest allowed aspect share)
    marker_label: str = ""


def probability_bars(probabilities: Mapping[str, float | None], predicted: str) -> BarChart:
    width, label_w, row = 330, 84.0, 20.0
    span = width - label_w - 52
    bars = []
    for i, stage in enumerate(STAGES):
        p = finite(probabilities.get(stage)) or 0.0
        bars.append(
            Bar(
                label=stage,
                value=p,
                text=fmt_percent(p, digits=0 if p >= 0.1 else 1),
                x=label_w,
                y=i * row + 2,
                width=round(max(span * p, 1.0), 1),
                colour=STAGE_COLOURS[stage],
                strong=stage == predicted,
            )
        )
    return BarChart(
        width=width, height=int(len(STAGES) * row + 4), label_width=label_w, track=span, bars=bars
    )


def aspect_bars(counts: Mapping[str, int], max_share: float | None) -> BarChart:
    width, label_w, row = 440, 140.0, 24.0
    span = width - label_w - 80
    total = sum(counts.values())
    top = max(max(counts.values(), default=0) / total if total else 0.0, max_share or 0.0, 0.01)
    bars = []
    for i, aspect in enumerate(ASPECT_TITLES):
        n = int(counts.get(aspect, 0))
        share = n / total if total else 0.0
        bars.append(
            Bar(
                label=ASPECT_TITLES[aspect],
                value=share,
                text=f"{n} ({fmt_percent(share, digits=0)})",
                x=label_w,
                y=i * row + 4,
                width=round(max(span * share / top, 1.0), 1),
                colour="#4C6A92",
            )
        )
    marker = label_w + span * max_share / top if max_share else None
    return BarChart(
        width=width,
        height=int(len(ASPECT_TITLES) * row + 22),
        label_width=label_w,
        track=span,
        bars=bars,
        marker=round(marker, 1) if marker is not None else None,
        marker_label=f"limit {fmt_percent(max_share, digits=0)}" if max_share else "",
    )


@dataclass(frozen=True)
class Step:
    label: str
    detail: str
    tooltip: str
    x0: float  # the bar spans x0..x1 (x0 == x1: a marker)
    x1: float
    y: float
    kind: str  # base | up | down | rest | total
    value_text: str
    end: float  # x of the running total after this step (where the connector starts)


@dataclass(frozen=True)
class Waterfall:
    width: int
    height: int
    label_width: float
    plot_right: float
    row: float
    steps: list[Step]
    ticks: list[Tick]
    axis_y: float


def waterfall(
    base: float | None,
    margin: float | None,
    drivers: Sequence[Mapping[str, object]],
    stage: str,
    probability: float | None,
) -> Waterfall | None:
    """Base value -> each driver's contribution -> the other features together -> the margin."""
    base, margin = finite(base), finite(margin)
    if base is None or margin is None:
        return None
    contribs = [(d, finite(d.get("contribution"))) for d in drivers]
    contribs = [(d, c) for d, c in contribs if c is not None]
    rest = margin - base - sum(c for _, c in contribs)
    points = [base]
    running = base
    for _, c in contribs:
        running += c
        points.append(running)
    points.append(margin)
    lo, hi = min(points), max(points)
    pad = (hi - lo) * 0.08 or 0.5
    lo, hi = lo - pad, hi + pad
    width, label_w, value_w, row = 520, 200.0, 64.0, 30.0
    plot_right = width - value_w

    def sx(v: float) -> float:
        return round(label_w + (v - lo) / (hi - lo) * (plot_right - label_w), 1)

    steps = [
        Step(
            "base value",
            "comparative average",
            f"base value (expected margin of {stage}) {base:+.3f}",
            sx(base),
            sx(base),
            0.0,
            "base",
            f"{base:+.2f}",
            sx(base),
        )
    ]
    running = base
    for d, c in contribs:
        feature = str(d.get("feature"))
        pct = finite(d.get("percentile"))
        detail = fmt_feature(feature, d.get("value"))
        if pct is not None:
            detail += f" (P{pct:.0f})"
        direction = str(d.get("direction") or ("towards" if c > 0 else "away from"))
        steps.append(
            Step(
                feature if len(feature) <= 30 else feature[:29] + "…",
                detail,
                f"{feature} = {detail}: {c:+.3f}, {direction} {stage}",
                sx(min(running, running + c)),
                sx(max(running, running + c)),
                len(steps) * row,
                "up" if c > 0 else "down",
                f"{c:+.2f}",
                sx(running + c),
            )
        )
        running += c
    if abs(rest) > 1e-9:
        steps.append(
            Step(
                "all other features",
                "together",
                f"all other features together {rest:+.3f}",
                sx(min(running, running + rest)),
                sx(max(running, running + rest)),
                len(steps) * row,
                "rest",
                f"{rest:+.2f}",
                sx(running + rest),
            )
        )
    p_text = f"p = {fmt_percent(probability, digits=0)}" if finite(probability) is not None else ""
    steps.append(
        Step(
            f"margin of {stage}",
            p_text,
            f"margin of {stage} {margin:+.3f}" + (f" ({p_text})" if p_text else ""),
            sx(margin),
            sx(margin),
            len(steps) * row,
            "total",
            f"{margin:+.2f}",
            sx(margin),
        )
    )
    axis_y = len(steps) * row + 4
    ticks = [Tick(sx(t), f"{t:g}") for t in nice_ticks(lo, hi, 5)]
    return Waterfall(
        width=width,
        height=int(axis_y + 18),
        label_width=label_w,
        plot_right=plot_right,
        row=row,
        steps=steps,
        ticks=ticks,
        axis_y=axis_y,
    )
