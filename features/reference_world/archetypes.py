"""Every number of the synthetic reference world in one place: regions, archetypes, sectors, stages.

docs/reference-world.md shows these tables (rendered by ``features.reference_world.tables``), so
the documentation and the simulation cannot drift apart. Money is in US dollars of the year
(a common nominal trend is applied on top of the 2000 levels given here).
"""

from __future__ import annotations

from dataclasses import dataclass

from features.stages import STAGES

YEARS: tuple[int, ...] = tuple(range(2000, 2025))
TARGET_REGION = "Wenzhou-like"
OWNERSHIPS: tuple[str, ...] = ("private", "foreign", "state", "collective")


@dataclass(frozen=True)
class Sector:
    """What a sector brings wherever it is: levels in year-2000 dollars per employee."""

    name: str
    wage: float  # annual wage per employee
    productivity: float  # revenue per employee
    size_factor: float  # multiplies the archetype's typical firm size
    export_share: float  # mean share of revenue exported
    rd_intensity: float  # R&D / revenue of a firm that does R&D, before archetype and stage
    va_share: float  # value added / output


@dataclass(frozen=True)
class StageProcess:
    """A semi-Markov chain over the five stages, one per archetype.

    A spell in stage s lasts ``min_years[s]`` plus a geometric number of extra years with mean
    ``mean_years[s] - min_years[s]``; when it ends the next stage is drawn from
    ``transitions[s]`` (a row over the five stages; decline -> decline is a further spell of
    decline, i.e. decline persists).
    """

    initial: tuple[float, float, float, float, float]
    min_years: tuple[int, int, int, int, int]
    mean_years: tuple[float, float, float, float, float]
    transitions: tuple[tuple[float, float, float, float, float], ...]


@dataclass(frozen=True)
class StageEffect:
    """How a stage moves the firms of a cluster, per year (rates are fractions, trends logs)."""

    entry_rate: float  # entrants per incumbent firm
    entry_base: float  # extra entrants per year at scale 1 for a cluster of typical weight
    exit_rate: float  # exit probability of a mid-sized, established, average firm
    size_drift: float  # log employment drift of incumbents
    top_drift: float  # extra log drift of firms above the cluster's mean log size
    productivity_trend: float  # cluster revenue-per-employee trend (log, beyond the nominal one)
    wage_trend: float  # cluster wage trend (log, beyond the nominal one)
    innovation_trend: float  # cluster R&D propensity trend (log)
    entrant_productivity: float  # mean log productivity edge of entrants over incumbents
    institutions_per_100: float  # institutions per 100 establishments the cluster tends to
    va_trend: float  # yearly drift of the cluster's value-added share (upgrading or not)


@dataclass(frozen=True)
class Archetype:
    name: str
    description: str
    process: StageProcess
    firms: float  # firms of a typical cluster in 2000 at scale 1 (stage 'mature')
    size_median: float  # median long-run firm size (employees)
    size_sigma: float  # spread of log long-run firm size across firms
    ownership: tuple[float, float, float, float]  # shares over OWNERSHIPS
    ownership_size: tuple[float, float, float, float]  # long-run size multiplier by ownership
    wage_factor: float
    productivity_factor: float
    export_factor: float
    rd_factor: float
    entry_factor: float
    exit_factor: float
    institutions_factor: float
    rest_growth: float  # annual growth of the regional economy outside the clusters
    cluster_share: tuple[float, float]  # clusters' share of regional employment in 2000 (range)
    sectors: tuple[str, ...]


@dataclass(frozen=True)
class Region:
    name: str
    archetype: str
    clusters: tuple[str, ...] | None = None  # None: drawn from the archetype's sectors
    # Given clusters only: the stage of 2000 (None: drawn from the archetype's process) and the
    # relative size of each cluster (None: drawn); given clusters all exist from 2000 on.
    initial_stages: tuple[str, ...] | None = None
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Noise:
    """Firm dynamics, noise and data flaws shared by every region."""

    clusters_per_region: int = 12
    cluster_weight_sigma: float = 1.1  # log spread of cluster size (rescaled to mean per region)
    # firm size
    size_reversion: float = 0.12  # pull of log firm size towards the firm's long-run size
    firm_growth_sigma: float = 0.22  # idiosyncratic log employment shock
    cluster_growth_sigma: float = 0.05  # cluster-year common log employment shock
    entrant_size_gap: float = 1.2  # entrants start this far (log) below their long-run size
    entrant_size_sigma: float = 0.5
    incumbent_size_sigma: float = 0.45  # firms of 2000 around their long-run size (log)
    incumbent_age_mean: float = 12.0  # mean age of the firms of 2000 (geometric, at most 60)
    emerging_age_max: int = 4  # firms of clusters emerging in 2000 are 0 to this many years old
    emerging_size_gap: float = 0.6  # ... and this far (log) below their long-run size
    # entry and exit
    entry_dispersion: float = 6.0  # gamma shape of the cluster-year entry-rate multiplier
    small_firm_exit: float = 1.5  # exit probability x (1 + this * exp(-employees / scale))
    small_firm_scale: float = 5.0
    young_firm_exit: float = 1.4  # exit probability x this in the first 3 years
    productivity_exit: float = 0.5  # exit probability x exp(-this * firm productivity effect)
    exit_cap: float = 0.95
    # cluster levels and firm performance
    trend_sigma: float = 0.02  # cluster-year noise of the productivity and wage levels
    innovation_sigma: float = 0.04  # cluster-year noise of the innovation level
    firm_productivity_sigma: float = 0.35  # persistent firm productivity effect (log)
    revenue_sigma: float = 0.12  # yearly firm revenue noise (log)
    wage_sigma: float = 0.08  # yearly firm wage noise (log)
    wage_productivity_elasticity: float = 0.3
    foreign_export_edge: float = 0.15  # added to a foreign-owned firm's export share
    export_noise: float = 0.03  # yearly noise of a firm's export share
    rd_share_at_10: float = 0.15  # probability that a 10-employee firm does R&D at all
    rd_size_slope: float = 0.7  # logit slope of doing R&D in log size
    rd_multiplier_sigma: float = 0.6  # persistent firm R&D intensity multiplier (log)
    patent_cost: float = 1_000_000.0  # R&D dollars per patent (year-2000 dollars)
    nominal_growth: float = 0.02  # common yearly growth of wages and prices
    # stage dynamics
    stage_adjustment: float = 0.5  # share of the gap to a new stage's effects closed each year
    late_birth_share: float = 0.15  # drawn clusters that emerge after 2000 (absent before)
    birth_years: tuple[int, int] = (2001, 2020)  # their first year, uniform over this range
    # panel-level facts
    institutions_sigma: float = 0.3  # persistent cluster institutional endowment (log)
    institutions_smoothing: float = 0.3  # weight of this year's target in the institution level
    va_offset_sigma: float = 0.04  # persistent departure of a cluster's value-added share
    va_reversion: float = 0.1  # yearly pull of the value-added share back to its base
    va_sigma: float = 0.01  # cluster-year measurement noise of the value-added share
    rest_sigma: float = 0.012  # yearly noise of the non-cluster regional economy
    rest_cycle_weight: float = 0.5  # the rest of the economy feels this share of the cycle
    local_multiplier: float = 0.5  # jobs the rest of the region gains or loses per cluster job
    # the nation the regions belong to (national reference rows of the panel)
    nation_world_share: float = 0.2  # the regions' share of national employment in 2000
    nation_sector_share: tuple[float, float] = (0.04, 0.15)  # ... of a sector's, range
    nation_growth: float = 0.01  # yearly growth of national employment outside the regions
    nation_sector_sigma: float = 0.015  # spread of the sectors' own yearly trends
    nation_sigma: float = 0.008  # yearly noise of national employment outside the regions
    # flaws of real statistics
    missing_revenue: float = 0.03  # share of firm rows with revenue not reported
    missing_exports: float = 0.05
    missing_rd: float = 0.06
    suppress_below: int = 3  # panel money cells are suppressed where establishments < this


NOISE = Noise()

# Nation-wide cycles (log employment shock to every firm, entry-rate multiplier): the 2001 dot-com
# slump, the 2009 recession and the 2020 pandemic, with rebounds.
CYCLE: dict[int, tuple[float, float]] = {
    2001: (-0.02, 0.85),
    2008: (-0.02, 0.85),
    2009: (-0.06, 0.6),
    2010: (0.02, 1.0),
    2020: (-0.05, 0.7),
    2021: (0.04, 1.15),
}

# One row per stage, in the order of features.stages.STAGES.
STAGE_EFFECTS: tuple[StageEffect, ...] = (
    StageEffect(0.20, 4.0, 0.07, 0.06, 0.00, 0.015, 0.010, 0.04, 0.00, 0.6, 0.000),  # emerging
    StageEffect(0.14, 2.0, 0.05, 0.06, 0.00, 0.020, 0.015, 0.04, 0.00, 1.2, 0.000),  # growth
    StageEffect(0.06, 0.5, 0.06, 0.00, 0.03, 0.005, 0.005, 0.00, -0.05, 2.4, 0.000),  # mature
    StageEffect(0.03, 0.2, 0.11, -0.05, 0.00, -0.015, -0.015, -0.08, -0.10, 1.8, -0.004),  # decl.
    StageEffect(0.09, 1.5, 0.09, -0.02, 0.00, 0.030, 0.030, 0.10, 0.15, 2.0, 0.006),  # renewal
)

# Number of firms in 2000 relative to the archetype's `firms`, by the stage of 2000.
INITIAL_FIRMS: tuple[float, float, float, float, float] = (0.06, 0.5, 1.0, 0.9, 0.7)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(","))


# Rows: from-stage; columns: to-stage (emerging, growth, mature, decline, renewal).
_T = tuple[float, float, float, float, float]


# A renewal that fails falls back into decline (Martin & Sunley's adaptive cycle allows it).
RENEWAL_FAILURE = 0.15


def _rows(mature_renewal: float, decline_renewal: float, renewal_growth: float) -> tuple[_T, ...]:
    return (
        (0.0, 0.85, 0.0, 0.15, 0.0),
        (0.0, 0.0, 0.85, 0.15, 0.0),
        (0.0, 0.0, 0.0, 1 - mature_renewal, mature_renewal),
        (0.0, 0.0, 0.0, 1 - decline_renewal, decline_renewal),
        (0.0, renewal_growth, 1 - renewal_growth - RENEWAL_FAILURE, RENEWAL_FAILURE, 0.0),
    )


ARCHETYPES: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype(
            name="sme_export_district",
            description="SME-led export district (like Wenzhou): many small private firms",
            process=StageProcess(
                initial=(0.40, 0.25, 0.15, 0.10, 0.10),
                min_years=(5, 3, 4, 2, 3),
                mean_years=(10.0, 7.0, 10.0, 5.0, 6.0),
                transitions=_rows(0.35, 0.55, 0.5),
            ),
            firms=600.0,
            size_median=7.0,
            size_sigma=1.3,
            ownership=(0.88, 0.04, 0.03, 0.05),
            ownership_size=(1.0, 2.5, 3.0, 1.5),
            wage_factor=0.6,
            productivity_factor=0.7,
            export_factor=1.3,
            rd_factor=0.6,
            entry_factor=1.2,
            exit_factor=1.1,
            institutions_factor=1.0,
            rest_growth=0.035,
            cluster_share=(0.25, 0.40),
            sectors=_names(
                "Footwear, Apparel, Eyeglasses, Lighters, Low-voltage electrics, "
                "Pumps and valves, Auto parts, Plastics, Printing and packaging, "
                "Synthetic leather, Textiles, Furniture, Toys, Hardware and tools"
            ),
        ),
        Archetype(
            name="italian_district",
            description="Italian-style district: small specialised firms, dense institutions",
            process=StageProcess(
                initial=(0.35, 0.15, 0.20, 0.15, 0.15),
                min_years=(5, 3, 5, 3, 3),
                mean_years=(10.0, 6.0, 11.0, 6.0, 7.0),
                transitions=_rows(0.45, 0.55, 0.4),
            ),
            firms=560.0,
            size_median=5.5,
            size_sigma=0.9,
            ownership=(0.93, 0.05, 0.01, 0.01),
            ownership_size=(1.0, 3.0, 2.0, 1.5),
            wage_factor=0.9,
            productivity_factor=1.0,
            export_factor=1.1,
            rd_factor=0.8,
            entry_factor=0.9,
            exit_factor=0.9,
            institutions_factor=1.6,
            rest_growth=0.005,
            cluster_share=(0.20, 0.35),
            sectors=_names(
                "Textiles, Apparel, Footwear, Leather goods, Eyeglasses, Furniture, Ceramics, "
                "Jewellery, Machinery, Food processing, Wine, Packaging machinery, "
                "Marble and stone"
            ),
        ),
        Archetype(
            name="fdi_assembly_hub",
            description="FDI-led assembly hub: a few large foreign-owned plants and suppliers",
            process=StageProcess(
                initial=(0.45, 0.25, 0.10, 0.10, 0.10),
                min_years=(5, 3, 4, 2, 2),
                mean_years=(9.0, 6.0, 9.0, 5.0, 5.0),
                transitions=_rows(0.3, 0.5, 0.6),
            ),
            firms=110.0,
            size_median=22.0,
            size_sigma=1.3,
            ownership=(0.40, 0.50, 0.08, 0.02),
            ownership_size=(1.0, 4.0, 2.5, 1.0),
            wage_factor=0.75,
            productivity_factor=1.1,
            export_factor=1.5,
            rd_factor=0.7,
            entry_factor=1.0,
            exit_factor=1.0,
            institutions_factor=0.6,
            rest_growth=0.03,
            cluster_share=(0.20, 0.35),
            sectors=_names(
                "Electronics, Semiconductors, Auto parts, Automotive assembly, Plastics, "
                "Machinery, Chemicals, Logistics, Textiles, Apparel, Medical devices, "
                "Low-voltage electrics, Metal fabrication"
            ),
        ),
        Archetype(
            name="innovation_hub",
            description="Innovation hub: research-intensive firms, universities, high wages",
            process=StageProcess(
                initial=(0.50, 0.20, 0.10, 0.05, 0.15),
                min_years=(5, 3, 4, 2, 3),
                mean_years=(9.0, 6.0, 9.0, 4.0, 6.0),
                transitions=_rows(0.55, 0.7, 0.7),
            ),
            firms=340.0,
            size_median=7.0,
            size_sigma=1.3,
            ownership=(0.82, 0.14, 0.03, 0.01),
            ownership_size=(1.0, 3.0, 2.0, 1.0),
            wage_factor=1.15,
            productivity_factor=1.3,
            export_factor=0.8,
            rd_factor=2.2,
            entry_factor=1.1,
            exit_factor=1.0,
            institutions_factor=1.3,
            rest_growth=0.025,
            cluster_share=(0.15, 0.30),
            sectors=_names(
                "Software, Biopharma, Medical devices, Semiconductors, Electronics, Aerospace, "
                "Machinery, Chemicals, Business services, Digital media, Instruments, Robotics, "
                "Clean energy"
            ),
        ),
        Archetype(
            name="old_industrial_region",
            description="Old industrial region: large plants, state-owned firms, long declines",
            process=StageProcess(
                initial=(0.35, 0.10, 0.20, 0.20, 0.15),
                min_years=(5, 3, 5, 3, 3),
                mean_years=(11.0, 6.0, 11.0, 7.0, 7.0),
                transitions=_rows(0.25, 0.45, 0.4),
            ),
            firms=240.0,
            size_median=12.0,
            size_sigma=1.3,
            ownership=(0.60, 0.10, 0.25, 0.05),
            ownership_size=(1.0, 2.5, 3.5, 1.5),
            wage_factor=0.95,
            productivity_factor=1.0,
            export_factor=0.7,
            rd_factor=0.7,
            entry_factor=0.8,
            exit_factor=1.0,
            institutions_factor=1.1,
            rest_growth=0.0,
            cluster_share=(0.20, 0.40),
            sectors=_names(
                "Steel, Coal and mining, Chemicals, Machinery, Metal fabrication, Shipbuilding, "
                "Auto parts, Automotive assembly, Textiles, Glass, Logistics, Machine tools, "
                "Ceramics"
            ),
        ),
    )
}

_S = Sector
SECTORS: dict[str, Sector] = {
    s.name: s
    for s in (
        _S("Footwear", 24_000, 110_000, 1.0, 0.45, 0.004, 0.28),
        _S("Apparel", 22_000, 95_000, 1.0, 0.45, 0.003, 0.30),
        _S("Eyeglasses", 28_000, 120_000, 0.8, 0.50, 0.012, 0.35),
        _S("Lighters", 24_000, 100_000, 0.7, 0.60, 0.006, 0.30),
        _S("Low-voltage electrics", 34_000, 180_000, 1.3, 0.35, 0.025, 0.30),
        _S("Pumps and valves", 36_000, 190_000, 1.1, 0.35, 0.020, 0.32),
        _S("Auto parts", 38_000, 230_000, 1.8, 0.30, 0.025, 0.27),
        _S("Plastics", 30_000, 170_000, 1.0, 0.25, 0.010, 0.28),
        _S("Printing and packaging", 30_000, 140_000, 0.8, 0.15, 0.005, 0.35),
        _S("Synthetic leather", 27_000, 160_000, 1.2, 0.35, 0.008, 0.25),
        _S("Textiles", 26_000, 130_000, 1.3, 0.35, 0.006, 0.27),
        _S("Furniture", 27_000, 120_000, 1.0, 0.30, 0.006, 0.33),
        _S("Toys", 23_000, 100_000, 0.9, 0.55, 0.005, 0.30),
        _S("Hardware and tools", 29_000, 140_000, 0.9, 0.40, 0.010, 0.32),
        _S("Leather goods", 27_000, 130_000, 0.8, 0.45, 0.006, 0.35),
        _S("Ceramics", 30_000, 130_000, 1.1, 0.35, 0.010, 0.35),
        _S("Jewellery", 29_000, 200_000, 0.6, 0.45, 0.006, 0.25),
        _S("Machinery", 42_000, 210_000, 1.4, 0.40, 0.035, 0.35),
        _S("Food processing", 30_000, 250_000, 1.4, 0.15, 0.006, 0.22),
        _S("Wine", 31_000, 200_000, 0.8, 0.35, 0.004, 0.40),
        _S("Packaging machinery", 44_000, 220_000, 1.2, 0.55, 0.040, 0.36),
        _S("Marble and stone", 32_000, 150_000, 0.9, 0.40, 0.004, 0.35),
        _S("Electronics", 40_000, 250_000, 2.0, 0.55, 0.040, 0.25),
        _S("Semiconductors", 62_000, 350_000, 2.5, 0.60, 0.120, 0.40),
        _S("Automotive assembly", 46_000, 400_000, 4.0, 0.35, 0.030, 0.20),
        _S("Chemicals", 50_000, 400_000, 1.6, 0.35, 0.030, 0.30),
        _S("Logistics", 38_000, 150_000, 1.5, 0.05, 0.003, 0.45),
        _S("Medical devices", 58_000, 250_000, 1.0, 0.40, 0.080, 0.45),
        _S("Metal fabrication", 38_000, 170_000, 1.0, 0.20, 0.008, 0.33),
        _S("Software", 75_000, 180_000, 0.8, 0.15, 0.120, 0.55),
        _S("Biopharma", 70_000, 350_000, 1.2, 0.30, 0.150, 0.45),
        _S("Aerospace", 65_000, 300_000, 2.5, 0.45, 0.060, 0.35),
        _S("Business services", 55_000, 140_000, 0.8, 0.10, 0.010, 0.60),
        _S("Digital media", 58_000, 160_000, 0.6, 0.15, 0.050, 0.55),
        _S("Instruments", 56_000, 220_000, 0.9, 0.45, 0.070, 0.45),
        _S("Robotics", 60_000, 240_000, 1.0, 0.45, 0.090, 0.42),
        _S("Clean energy", 55_000, 260_000, 1.3, 0.35, 0.060, 0.35),
        _S("Steel", 48_000, 350_000, 3.0, 0.20, 0.010, 0.25),
        _S("Coal and mining", 52_000, 300_000, 3.0, 0.10, 0.005, 0.40),
        _S("Shipbuilding", 47_000, 250_000, 3.5, 0.50, 0.015, 0.28),
        _S("Glass", 42_000, 200_000, 1.8, 0.25, 0.012, 0.33),
        _S("Machine tools", 45_000, 200_000, 1.2, 0.45, 0.040, 0.36),
    )
}

# The comparative regions (fictional names) and the target. Clusters of the comparative regions are
# drawn from their archetype's sectors with the seed; the target has Wenzhou's clusters.
REGIONS: tuple[Region, ...] = (
    Region("Azure Bay District", "sme_export_district"),
    Region("Redstone Delta", "sme_export_district"),
    Region("Valdoro District", "italian_district"),
    Region("Borgoverde Hills", "italian_district"),
    Region("Collina Serena", "italian_district"),
    Region("Eastgate Free Zone", "fdi_assembly_hub"),
    Region("Portlane Corridor", "fdi_assembly_hub"),
    Region("Southharbor Zone", "fdi_assembly_hub"),
    Region("Brightwater Valley", "innovation_hub"),
    Region("Cedarford Tech Coast", "innovation_hub"),
    Region("Northfield Science Park", "innovation_hub"),
    Region("Ironvale Basin", "old_industrial_region"),
    Region("Coalbrook Heights", "old_industrial_region"),
    Region("Steelmoor Valley", "old_industrial_region"),
    # The target's flagships are established in 2000 and its largest clusters (footwear,
    # apparel, low-voltage electrics), after Wenzhou, whose clusters the project grew out of; the
    # stages and sizes are assumptions of this world, not statistics (docs/reference-world.md).
    Region(
        TARGET_REGION,
        "sme_export_district",
        _names(
            "Footwear, Apparel, Eyeglasses, Lighters, Low-voltage electrics, Pumps and valves, "
            "Auto parts, Plastics, Printing and packaging, Synthetic leather, Textiles, Furniture"
        ),
        initial_stages=_names(
            "mature, mature, mature, mature, growth, growth, "
            "growth, mature, growth, mature, mature, emerging"
        ),
        weights=(3.0, 2.5, 1.2, 0.8, 2.5, 1.5, 1.2, 0.8, 0.6, 0.8, 0.6, 0.4),
    ),
)


def _check() -> None:
    """Fail at import if the tables are inconsistent (a typo here would silently skew the world)."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"reference world parameters: {what}")

    need(len(STAGE_EFFECTS) == len(STAGES) == len(INITIAL_FIRMS), "one stage effect per stage")
    for a in ARCHETYPES.values():
        p = a.process
        need(abs(sum(p.initial) - 1) < 1e-9, f"{a.name}: initial stages must sum to 1")
        need(abs(sum(a.ownership) - 1) < 1e-9, f"{a.name}: ownership shares must sum to 1")
        need(len(p.transitions) == len(STAGES), f"{a.name}: one transition row per stage")
        for row in p.transitions:
            need(abs(sum(row) - 1) < 1e-9, f"{a.name}: transition rows must sum to 1")
        need(
            all(m >= lo >= 1 for m, lo in zip(p.mean_years, p.min_years, strict=True)),
            f"{a.name}: 1 <= min_years <= mean_years",
        )
        need(all(s in SECTORS for s in a.sectors), f"{a.name}: unknown sector")
        need(len(a.sectors) >= NOISE.clusters_per_region, f"{a.name}: too few sectors")
    for r in REGIONS:
        need(r.archetype in ARCHETYPES, f"{r.name}: unknown archetype")
        need(r.clusters is None or all(c in SECTORS for c in r.clusters), f"{r.name}: sector")
        for given in (r.initial_stages, r.weights):
            need(
                given is None or (r.clusters is not None and len(given) == len(r.clusters)),
                f"{r.name}: one initial stage and weight per given cluster",
            )
        need(all(s in STAGES for s in r.initial_stages or ()), f"{r.name}: unknown stage")
    lo, hi = NOISE.birth_years
    need(YEARS[0] < lo <= hi <= YEARS[-1], "birth years inside the simulated years")


_check()
