"""Firm-by-firm simulation of one region of the reference world: seed in, frames out.

Each region is simulated on its own (so the generator can stream region by region), vectorised
over all firms of the region in a year. Random streams are derived from (seed, region index,
stream), so a region's clusters and stages do not depend on ``scale``, and one region does not
depend on another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from features.aggregate import KEYS, firms_to_panel
from features.reference_world.archetypes import (
    ARCHETYPES,
    CYCLE,
    INITIAL_FIRMS,
    NOISE,
    OWNERSHIPS,
    REGIONS,
    SECTORS,
    STAGE_EFFECTS,
    YEARS,
    Archetype,
    Region,
    StageEffect,
)
from features.reference_world.process import UNBORN, draw_births, simulate_stages
from features.stages import STAGE_ID, STAGES

# Independent random streams of one region.
_CLUSTERS, _STAGES, _FIRMS = 0, 1, 2

FIRM_SCHEMA = pa.schema(
    [
        ("region", pa.string()),
        ("cluster", pa.string()),
        ("year", pa.int64()),
        ("firm_id", pa.int64()),
        ("employees", pa.int64()),
        ("revenue", pa.float64()),
        ("exports", pa.float64()),
        ("rd_expenditure", pa.float64()),
        ("patents", pa.int64()),
        ("wages", pa.float64()),
        ("founded_year", pa.int64()),
        ("ownership", pa.string()),
    ]
)

# Panel money columns blanked where a cell has fewer than NOISE.suppress_below establishments.
SUPPRESSED = ("payroll", "output", "value_added", "exports", "rd_expenditure")


@dataclass(frozen=True)
class RegionWorld:
    """One simulated region: firm rows and the cluster-year facts that are not firm sums.

    ``firms`` follows FIRM_SCHEMA, sorted by cluster, year, firm_id. ``clusters`` has one row per
    cluster x year from the cluster's first year on (a cluster emerging after 2000 has none
    before): region, cluster, year, stage (the truth), institutions, va_share and
    region_employment_total.
    """

    firms: pa.Table
    clusters: pd.DataFrame


def _rng(seed: int, region_index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, region_index, stream])


def region_clusters(
    index: int, seed: int, regions: tuple[Region, ...] = REGIONS
) -> tuple[str, ...]:
    """The region's clusters: given, or drawn from its archetype's sectors (in sector order)."""
    region = regions[index]
    if region.clusters is not None:
        return region.clusters
    sectors = ARCHETYPES[region.archetype].sectors
    rng = _rng(seed, index, _CLUSTERS)
    chosen = rng.choice(len(sectors), size=NOISE.clusters_per_region, replace=False)
    return tuple(sectors[i] for i in sorted(chosen))


def _stage_ids(index: int, seed: int, regions: tuple[Region, ...]) -> np.ndarray:
    """Stage ids (clusters x years, ``UNBORN`` before a cluster emerges) from the region's own
    stream: drawn clusters may emerge after 2000, given clusters are there from the start."""
    region = regions[index]
    n_c = len(region_clusters(index, seed, regions))
    rng = _rng(seed, index, _STAGES)
    births = None
    if region.clusters is None:
        first, last = (YEARS.index(y) for y in NOISE.birth_years)
        births = draw_births(n_c, NOISE.late_birth_share, first, last, rng)
    initial = None
    if region.initial_stages is not None:
        initial = [STAGE_ID[s] for s in region.initial_stages]
    process = ARCHETYPES[region.archetype].process
    return simulate_stages(process, n_c, len(YEARS), rng, births=births, initial=initial)


def region_stages(index: int, seed: int, regions: tuple[Region, ...] = REGIONS) -> pd.DataFrame:
    """True stages of one region: region, cluster, year, stage (name). Cheap: no firms."""
    clusters = region_clusters(index, seed, regions)
    return _stage_frame(regions[index].name, clusters, _stage_ids(index, seed, regions))


def _stage_frame(region: str, clusters: tuple[str, ...], ids: np.ndarray) -> pd.DataFrame:
    """One row per cluster-year that exists (a cluster has no row before it emerges)."""
    n_c, n_t = ids.shape
    flat = ids.ravel()
    frame = pd.DataFrame(
        {
            "region": region,
            "cluster": np.repeat(np.asarray(clusters, dtype=object), n_t),
            "year": np.tile(np.asarray(YEARS, dtype="int64"), n_c),
            "stage": np.asarray(STAGES, dtype=object)[np.maximum(flat, 0)],
        }
    )
    return frame[flat != UNBORN].reset_index(drop=True)


def world_stages(seed: int, regions: tuple[Region, ...] = REGIONS) -> pd.DataFrame:
    """True stages of every region (what labels.csv and target_labels.csv hold)."""
    return pd.concat(
        [region_stages(i, seed, regions) for i in range(len(regions))], ignore_index=True
    )


def _effects(field: str) -> np.ndarray:
    return np.array([getattr(e, field) for e in STAGE_EFFECTS], dtype="float64")


_E = {f: _effects(f) for f in StageEffect.__dataclass_fields__}


class _Firms:
    """The living firms of a region as parallel arrays (one entry per firm)."""

    __slots__ = ("cl", "fid", "ls", "mu", "z", "founded", "own", "xs", "rdu", "rdm")

    def __init__(self, **cols: np.ndarray) -> None:
        for k in self.__slots__:
            setattr(self, k, cols[k])

    def take(self, idx: np.ndarray) -> _Firms:
        return _Firms(**{k: getattr(self, k)[idx] for k in self.__slots__})

    @staticmethod
    def concat(a: _Firms, b: _Firms) -> _Firms:
        merged = _Firms(**{k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__slots__})
        # Keep firms grouped by cluster; a stable sort keeps firm ids ascending within a cluster.
        return merged.take(np.argsort(merged.cl, kind="stable"))


class _Simulator:
    def __init__(self, index: int, seed: int, scale: float, regions: tuple[Region, ...]) -> None:
        self.region = regions[index]
        self.arch: Archetype = ARCHETYPES[self.region.archetype]
        self.clusters = region_clusters(index, seed, regions)
        self.stages = _stage_ids(index, seed, regions)
        self.born = self.stages != UNBORN  # (clusters, years)
        self.rng = _rng(seed, index, _FIRMS)
        self.scale = scale
        self.next_id = 1
        sec = [SECTORS[c] for c in self.clusters]
        n_c = len(sec)
        self.n_c = n_c
        self.log_wage = np.log([s.wage * self.arch.wage_factor for s in sec])
        self.log_prod = np.log([s.productivity * self.arch.productivity_factor for s in sec])
        self.log_size = np.log([s.size_factor * self.arch.size_median for s in sec])
        self.export = np.array([min(0.95, s.export_share * self.arch.export_factor) for s in sec])
        self.rd_int = np.array([s.rd_intensity * self.arch.rd_factor for s in sec])
        self.va = np.array([s.va_share for s in sec])
        rng = self.rng
        # Persistent cluster traits: overall weight (size) and institutional endowment.
        weight = rng.lognormal(0.0, NOISE.cluster_weight_sigma, n_c)
        if self.region.weights is not None:
            weight = np.asarray(self.region.weights, dtype="float64")
        # Rescaled to the lognormal's mean so a region's total size does not hinge on one draw.
        self.weight = weight * np.exp(NOISE.cluster_weight_sigma**2 / 2) / weight.mean()
        self.inst_weight = rng.lognormal(0.0, NOISE.institutions_sigma, n_c)
        # A cluster's value-added share: the sector's, with a persistent departure of its own.
        self.va_base = np.clip(self.va + rng.normal(0.0, NOISE.va_offset_sigma, n_c), 0.08, 0.8)
        self.va_level = self.va_base.copy()
        # Stage effects in force: a new stage's effects phase in over a few years.
        first = np.maximum(self.stages[:, 0], 0)
        self.eff = {f: _E[f][first].copy() for f in _E}
        # Cluster levels that drift with the stage: log productivity, wage and R&D propensity.
        self.prod_level = np.zeros(n_c)
        self.wage_level = np.zeros(n_c)
        self.innov_level = np.zeros(n_c)
        self.inst_level = np.zeros(n_c)
        self.own_log_size = np.log(np.asarray(self.arch.ownership_size))

    # -- firm creation -------------------------------------------------------------------------
    def _new_firms(self, cl: np.ndarray, year: int, z_edge: np.ndarray, young: bool) -> _Firms:
        rng = self.rng
        n = len(cl)
        own = rng.choice(len(OWNERSHIPS), size=n, p=self.arch.ownership).astype(np.int8)
        mu = self.log_size[cl] + self.own_log_size[own] + rng.normal(0, self.arch.size_sigma, n)
        if young:
            ls = mu - NOISE.entrant_size_gap + rng.normal(0.0, NOISE.entrant_size_sigma, n)
            founded = np.full(n, year, dtype=np.int64)
        else:
            ls = mu + rng.normal(0.0, NOISE.incumbent_size_sigma, n)
            age = rng.geometric(1 / (NOISE.incumbent_age_mean + 1), n) - 1
            founded = year - np.minimum(age, 60)
        # Export share: Beta(2, 2) around the cluster's mean, higher for foreign-owned firms.
        foreign = own == OWNERSHIPS.index("foreign")
        xs = np.clip(
            rng.beta(2.0, 2.0, n) * 2 * self.export[cl] + foreign * NOISE.foreign_export_edge, 0, 1
        )
        fid = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        return _Firms(
            cl=cl,
            fid=fid,
            ls=ls,
            mu=mu,
            z=z_edge + rng.normal(0.0, NOISE.firm_productivity_sigma, n),
            founded=founded,
            own=own,
            xs=xs,
            rdu=rng.random(n),
            rdm=rng.lognormal(0.0, NOISE.rd_multiplier_sigma, n),
        )

    def _initial(self) -> _Firms:
        st = np.maximum(self.stages[:, 0], 0)
        mean = self.scale * self.arch.firms * np.asarray(INITIAL_FIRMS)[st] * self.weight
        n0 = np.where(self.born[:, 0], np.maximum(self.rng.poisson(mean), 1), 0)
        cl = np.repeat(np.arange(self.n_c), n0)
        firms = self._new_firms(cl, YEARS[0], np.zeros(len(cl)), young=False)
        # Emerging clusters are young: their firms were founded in the last few years.
        emerging = st[cl] == 0
        age = self.rng.integers(0, NOISE.emerging_age_max + 1, len(cl))
        firms.founded = np.where(emerging, YEARS[0] - age, firms.founded)
        firms.ls = np.where(emerging, firms.ls - NOISE.emerging_size_gap, firms.ls)
        return firms

    # -- one year ------------------------------------------------------------------------------
    def _adjust_effects(self, t: int) -> None:
        """Move the effects in force towards this year's stage; a cluster emerging this year
        starts with the emerging effects."""
        st = np.maximum(self.stages[:, t], 0)
        new = ~self.born[:, t - 1] & self.born[:, t]
        a = NOISE.stage_adjustment
        for f, values in self.eff.items():
            target = _E[f][st]
            values += a * (target - values)
            values[new] = target[new]

    def _step(self, firms: _Firms, t: int) -> _Firms:
        rng = self.rng
        year = YEARS[t]
        self._adjust_effects(t)
        eff = self.eff
        born = self.born[:, t]
        shock, entry_mult = CYCLE.get(year, (0.0, 1.0))
        n_c = self.n_c
        sd = NOISE.trend_sigma
        self.prod_level += eff["productivity_trend"] + rng.normal(0, sd, n_c)
        self.wage_level += eff["wage_trend"] + rng.normal(0, sd, n_c)
        self.innov_level += eff["innovation_trend"] + rng.normal(0, NOISE.innovation_sigma, n_c)

        n_prev = np.bincount(firms.cl, minlength=n_c)
        # Exit: stage hazard, higher for small, young and unproductive firms.
        emp = np.exp(firms.ls)
        p_exit = (
            eff["exit_rate"][firms.cl]
            * self.arch.exit_factor
            * (1.0 + NOISE.small_firm_exit * np.exp(-emp / NOISE.small_firm_scale))
            * np.where(year - firms.founded < 3, NOISE.young_firm_exit, 1.0)
            * np.exp(-NOISE.productivity_exit * firms.z)
        )
        firms = firms.take(
            np.flatnonzero(rng.random(len(firms.cl)) >= np.minimum(p_exit, NOISE.exit_cap))
        )

        # Growth: mean reversion to the firm's long-run size plus stage drift and shocks; in a
        # mature cluster the firms above the cluster's mean size pull ahead.
        cl = firms.cl
        count = np.bincount(cl, minlength=n_c)
        mean_ls = np.bincount(cl, weights=firms.ls, minlength=n_c) / np.maximum(count, 1)
        common = rng.normal(0.0, NOISE.cluster_growth_sigma, n_c)
        firms.ls = (
            firms.ls
            + NOISE.size_reversion * (firms.mu - firms.ls)
            + eff["size_drift"][cl]
            + eff["top_drift"][cl] * (firms.ls > mean_ls[cl])
            + common[cl]
            + shock
            + rng.normal(0.0, NOISE.firm_growth_sigma, len(cl))
        )

        # Entry: Poisson with a gamma-distributed cluster-year rate (over-dispersed).
        lam = (
            (self.scale * eff["entry_base"] * self.weight + eff["entry_rate"] * n_prev)
            * self.arch.entry_factor
            * entry_mult
            * rng.gamma(NOISE.entry_dispersion, 1.0 / NOISE.entry_dispersion, n_c)
        )
        n_new = np.where(born, rng.poisson(lam), 0)
        # A cluster never empties completely: a lone entrant keeps it on the map.
        n_new = np.where(born & (count + n_new == 0), 1, n_new)
        cl_new = np.repeat(np.arange(n_c), n_new)
        entrants = self._new_firms(cl_new, year, eff["entrant_productivity"][cl_new], young=True)
        return _Firms.concat(firms, entrants)

    # -- observation ---------------------------------------------------------------------------
    def _observe(self, firms: _Firms, t: int) -> dict[str, np.ndarray]:
        rng = self.rng
        n = len(firms.cl)
        cl = firms.cl
        nominal = (1.0 + NOISE.nominal_growth) ** t
        employees = np.maximum(np.rint(np.exp(firms.ls)), 1).astype(np.int64)
        revenue = (
            employees
            * np.exp(self.log_prod[cl] + self.prod_level[cl] + firms.z)
            * np.exp(rng.normal(0.0, NOISE.revenue_sigma, n))
            * nominal
        )
        wages = (
            employees
            * np.exp(
                self.log_wage[cl]
                + self.wage_level[cl]
                + NOISE.wage_productivity_elasticity * firms.z
                + rng.normal(0.0, NOISE.wage_sigma, n)
            )
            * nominal
        )
        exports = revenue * np.clip(firms.xs + rng.normal(0.0, NOISE.export_noise, n), 0.0, 1.0)
        base_logit = np.log(NOISE.rd_share_at_10 / (1 - NOISE.rd_share_at_10))
        logit = base_logit + NOISE.rd_size_slope * (firms.ls - np.log(10.0)) + self.innov_level[cl]
        does_rd = firms.rdu < 1.0 / (1.0 + np.exp(-logit))
        rd = np.where(
            does_rd, revenue * self.rd_int[cl] * np.exp(self.innov_level[cl]) * firms.rdm, 0.0
        )
        patents = rng.poisson(rd / (NOISE.patent_cost * nominal)).astype(np.int64)
        # Unreported values, as in real firm surveys.
        revenue_obs = np.where(rng.random(n) < NOISE.missing_revenue, np.nan, revenue)
        # A firm that withholds its turnover withholds what is measured against it too, so that
        # summed exports and R&D never outgrow summed output.
        withheld = np.isnan(revenue_obs)
        exports = np.where(withheld | (rng.random(n) < NOISE.missing_exports), np.nan, exports)
        rd = np.where(withheld | (rng.random(n) < NOISE.missing_rd), np.nan, rd)
        return {
            "cl": cl,
            "year": np.full(n, YEARS[t], dtype=np.int64),
            "firm_id": firms.fid,
            "employees": employees,
            "revenue": revenue_obs,
            "exports": exports,
            "rd_expenditure": rd,
            "patents": patents,
            "wages": wages,
            "founded_year": firms.founded.astype(np.int64),
            "own": firms.own,
        }

    def _cluster_year(self, firms: _Firms, t: int) -> dict[str, np.ndarray]:
        est = np.bincount(firms.cl, minlength=self.n_c)
        target = (
            est * self.eff["institutions_per_100"] / 100 * self.arch.institutions_factor
        ) * self.inst_weight
        a = 1.0 if t == 0 else NOISE.institutions_smoothing
        self.inst_level = (1 - a) * self.inst_level + a * target
        emp = np.bincount(
            firms.cl, weights=np.maximum(np.rint(np.exp(firms.ls)), 1), minlength=self.n_c
        )
        # Upgrading raises the value-added share slowly and a decline erodes it; the level
        # keeps its cluster's own base and drifts back to it once the stage's pull is gone.
        if t > 0:
            self.va_level += self.eff["va_trend"] + NOISE.va_reversion * (
                self.va_base - self.va_level
            )
        return {
            "institutions": self.rng.poisson(self.inst_level).astype(np.int64),
            "va_share": np.clip(
                self.va_level + self.rng.normal(0, NOISE.va_sigma, self.n_c), 0.05, 0.9
            ),
            "cluster_employment": emp,
        }

    def run(self) -> RegionWorld:
        rows: list[dict[str, np.ndarray]] = []
        cy: list[dict[str, np.ndarray]] = []
        firms = self._initial()
        for t in range(len(YEARS)):
            if t > 0:
                firms = self._step(firms, t)
            rows.append(self._observe(firms, t))
            cy.append(self._cluster_year(firms, t))
        return RegionWorld(firms=self._firm_table(rows), clusters=self._cluster_frame(cy))

    def _firm_table(self, rows: list[dict[str, np.ndarray]]) -> pa.Table:
        cols = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
        names = np.asarray(self.clusters, dtype=object)
        rank = np.argsort(np.argsort(names))  # alphabetical position of each cluster
        order = np.lexsort((cols["firm_id"], cols["year"], rank[cols["cl"]]))
        cols = {k: v[order] for k, v in cols.items()}
        n = len(order)
        cluster = pa.DictionaryArray.from_arrays(
            pa.array(cols.pop("cl").astype(np.int32)), pa.array(list(self.clusters))
        ).cast(pa.string())
        ownership = pa.DictionaryArray.from_arrays(
            pa.array(cols.pop("own").astype(np.int32)), pa.array(list(OWNERSHIPS))
        ).cast(pa.string())
        arrays = {
            "region": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, dtype=np.int32)), pa.array([self.region.name])
            ).cast(pa.string()),
            "cluster": cluster,
            # Missing values are written as nulls (not NaN) so SQL readers see them as missing.
            **{k: pa.array(v, from_pandas=True) for k, v in cols.items()},
            "ownership": ownership,
        }
        return pa.Table.from_arrays([arrays[f.name] for f in FIRM_SCHEMA], schema=FIRM_SCHEMA)

    def _cluster_frame(self, cy: list[dict[str, np.ndarray]]) -> pd.DataFrame:
        n_c, n_t = self.n_c, len(YEARS)
        emp = np.stack([c["cluster_employment"] for c in cy], axis=1)  # (n_c, n_t)
        total_clusters = emp.sum(axis=0)
        lo, hi = self.arch.cluster_share
        share0 = self.rng.uniform(lo, hi)
        # The rest of the regional economy grows on its own path (rest_growth, a share of the
        # national cycle, noise) and gains or loses local jobs as the clusters do (a local
        # multiplier); it is not pulled towards a fixed cluster share.
        rest = np.empty(n_t)
        rest[0] = total_clusters[0] * (1 - share0) / share0
        for t in range(1, n_t):
            shock = CYCLE.get(YEARS[t], (0.0, 1.0))[0]
            growth = (
                self.arch.rest_growth
                + NOISE.rest_cycle_weight * shock
                + self.rng.normal(0, NOISE.rest_sigma)
            )
            spill = NOISE.local_multiplier * (total_clusters[t] - total_clusters[t - 1])
            rest[t] = max(rest[t - 1] * np.exp(growth) + spill, 0.5 * rest[t - 1])
        region_total = np.rint(rest + total_clusters).astype(np.int64)
        keep = self.born.ravel()
        frame = _stage_frame(self.region.name, self.clusters, self.stages)
        frame["institutions"] = np.stack([c["institutions"] for c in cy], axis=1).ravel()[keep]
        frame["va_share"] = np.stack([c["va_share"] for c in cy], axis=1).ravel()[keep]
        frame["region_employment_total"] = np.tile(region_total, n_c)[keep]
        return frame.sort_values(["cluster", "year"], kind="stable", ignore_index=True)


def simulate_region(
    index: int, *, seed: int, scale: float, regions: tuple[Region, ...] = REGIONS
) -> RegionWorld:
    """Simulate region ``regions[index]`` for every year: its firms and cluster-year facts."""
    return _Simulator(index, seed, scale, regions).run()


def build_panel(firms: pd.DataFrame, clusters: pd.DataFrame) -> pd.DataFrame:
    """The panel grain of one or more regions, as a statistics office would publish it.

    ``firms_to_panel`` of the firm rows, plus region_employment_total, institutions and
    value_added (output x the cluster-year value-added share), with the money cells of cells with
    fewer than ``NOISE.suppress_below`` establishments suppressed (NaN), as statistical offices
    do to protect single firms.
    """
    panel = firms_to_panel(firms)
    extra = clusters[[*KEYS, "institutions", "va_share", "region_employment_total"]]
    panel = panel.merge(extra, on=KEYS, how="left", validate="one_to_one")
    panel["value_added"] = panel["output"] * panel.pop("va_share")
    small = panel["establishments"] < NOISE.suppress_below
    for col in SUPPRESSED:
        panel.loc[small, col] = np.nan
    return panel
