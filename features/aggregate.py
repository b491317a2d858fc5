"""Firm microdata (one row per firm x year) to the panel grain, plus what only microdata gives.

Written for tens of millions of firm rows: region and cluster become integer codes (cheap for
categorical / dictionary-encoded input), every region x cluster x year group a dense integer, and
the two orders the aggregation needs (by group and size; by firm and year) come from integer
radix sorts, so no string is compared and no pandas groupby runs over the firm rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["region", "cluster", "year"]

# EU recommendation 2003/361: an SME has fewer than 250 persons employed.
SME_THRESHOLD = 250

_SUMS = {
    "wages": "payroll",
    "revenue": "output",
    "exports": "exports",
    "rd_expenditure": "rd_expenditure",
    "patents": "patents",
}
# Shares of turnover: scaled for non-reporting firms by revenue, so that their intensity is the
# reporters' own and never above what one firm can report (exports <= revenue).
_PER_REVENUE = ("exports", "rd_expenditure")

# Dense lookup tables up to this many possible groups; beyond it np.unique (a sort) is used.
_DENSE_LIMIT = 1 << 26


def _argsort_int(key: np.ndarray) -> np.ndarray:
    """A stable argsort of non-negative integers: LSD radix with 16-bit digits (numpy sorts
    16-bit integers by radix), or numpy's own sort for keys wider than 48 bits."""
    top = int(key.max()) if len(key) else 0
    bits = max(top.bit_length(), 1)
    if bits > 48:
        return np.argsort(key, kind="stable")
    order = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
    for shift in range(16, bits, 16):
        digit = ((key[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
    return order


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes that follow the sorted order of the values, and those values (-1: missing).

    Categoricals are re-coded through their categories, so a dictionary-encoded column never
    materialises its strings; the output then holds plain values, not categories.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories
        order = cats.argsort()
        rank = np.empty(len(cats) + 1, dtype=np.int64)
        rank[order] = np.arange(len(cats))
        rank[-1] = -1  # code -1 (missing) stays -1
        return rank[values.cat.codes.to_numpy()], cats[order]
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), pd.Index(uniques)


def _dense(key: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense 0..k-1 ids of integer keys in [0, top) and the sorted distinct keys."""
    if top <= _DENSE_LIMIT:
        present = np.zeros(top, dtype=bool)
        present[key] = True
        distinct = np.flatnonzero(present)
        ids = np.cumsum(present) - 1
        return ids[key], distinct
    distinct, ids = np.unique(key, return_inverse=True)
    return ids.astype(np.int64), distinct


def _firm_codes(firm_id: pd.Series) -> tuple[np.ndarray, int]:
    """Non-negative integer firm codes and their range; integer ids are used as they are."""
    values = firm_id.to_numpy()
    if np.issubdtype(values.dtype, np.integer) and len(values):
        low = int(values.min())
        return values.astype(np.int64) - low, int(values.max()) - low + 1
    codes, uniques = pd.factorize(firm_id)
    return codes.astype(np.int64), max(len(uniques), 1)


def _group_sum(ids: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(ids, weights=values, minlength=n)


def _ratio_estimate(
    gid: np.ndarray, values: np.ndarray, base: np.ndarray, base_total: np.ndarray, n: int
) -> np.ndarray:
    """Per-group sum of ``values``, scaled up for the rows that left it blank: by the group's
    ``base_total`` over the base of the rows that gave it (a ratio estimate). Missing where no
    row with a known base gave a value, or where those rows' base is zero."""
    known = ~(np.isnan(values) | np.isnan(base))
    ids = gid[known]  # tens of millions of rows: select once
    summed = _group_sum(ids, values[known], n)
    covered = _group_sum(ids, base[known], n)
    seen = np.bincount(ids, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(covered == base_total, summed, summed * (base_total / covered))
    return np.where((seen > 0) & np.isfinite(scaled), scaled, np.nan)


def _consecutive_by_table(
    rc: np.ndarray, cc: np.ndarray, firm: np.ndarray, n_firms: int, yidx: np.ndarray, span: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(in t-1, in t+1): whether each row's firm has a row in the same cluster the year before /
    after, from a region x firm x year table of cluster codes: no sort, two lookups per row.

    None when the table would be too large or a region x firm x year holds two rows."""
    n_regions = int(rc.max()) + 1
    size = n_regions * n_firms * span
    if size > max(8 * len(rc), 1 << 24):
        return None
    table = np.full(size, -1, dtype=np.int16 if int(cc.max()) < (1 << 15) else np.int32)
    slot = (rc * n_firms + firm) * span + yidx
    table[slot] = cc
    if not np.array_equal(table[slot], cc):  # a firm twice in one year: leave it to the sort
        return None
    # yidx never reaches span - 1 and slot - 1 of year 0 is the previous firm's unused last
    # slot, so neither neighbour lookup crosses into another firm.
    slot -= 1
    before = table[slot] == cc
    slot += 2
    np.minimum(slot, size - 1, out=slot)
    after = table[slot] == cc
    return before, after


def _consecutive_by_sort(
    cell: np.ndarray, firm: np.ndarray, n_firms: int, yidx: np.ndarray, span: int
) -> tuple[np.ndarray, np.ndarray]:
    """The same as ``_consecutive_by_table``, by sorting rows by region x cluster, firm, year."""
    if cell.max(initial=0) * n_firms * span < (1 << 62):
        # A firm's consecutive years are neighbours whose keys differ by exactly 1 (``span``
        # leaves room for year + 1 within the firm).
        key = (cell * n_firms + firm) * span + yidx
        order = _argsort_int(key)
        ks = key[order]
        del key
        consecutive = ks[1:] == ks[:-1] + 1
        del ks
    else:  # ids too wide for one integer key
        order = np.lexsort((yidx, firm, cell))
        c, f, y = cell[order], firm[order], yidx[order]
        consecutive = (c[1:] == c[:-1]) & (f[1:] == f[:-1]) & (y[1:] == y[:-1] + 1)
    before = np.zeros(len(order), dtype=bool)
    before[order[1:]] = consecutive
    after = np.zeros(len(order), dtype=bool)
    after[order[:-1]] = consecutive
    return before, after


def _median_by_group(gid: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group median of the non-missing values (mean of the two middle ones for an even
    count). Small integer values (firm ages) are counted per group instead of sorted."""
    known = ~np.isnan(values)
    v = values[known]
    del values
    g = gid[known]
    del known
    whole = v.astype(np.int64)
    if len(v) and np.array_equal(whole, v):
        low = int(whole.min())
        width = int(whole.max()) - low + 1
        if width * n_groups <= (1 << 25):
            key = g * width  # built in place: tens of millions of rows
            key += whole
            key -= low
            del whole
            hist = np.bincount(key, minlength=n_groups * width).reshape(n_groups, width)
            cum = np.cumsum(hist, axis=1)
            n = cum[:, -1]
            # the value at 0-based rank r is the first one whose cumulative count exceeds r
            lo = (cum <= ((n - 1) // 2)[:, None]).sum(axis=1)
            hi = (cum <= (n // 2)[:, None]).sum(axis=1)
            return np.where(n > 0, (lo + hi) / 2.0 + low, np.nan)
    out = pd.Series(v).groupby(g, sort=True).median()
    return out.reindex(range(n_groups)).to_numpy(dtype="float64")


def firms_to_panel(firms: pd.DataFrame, sme_threshold: int = SME_THRESHOLD) -> pd.DataFrame:
    """Aggregate validated firm rows to one row per region x cluster x year.

    Each firm row counts as one establishment. Besides the panel contract's columns it adds
    ``hhi`` (Herfindahl of firm employment shares), ``gini`` (of firm size) and
    ``median_firm_age`` (when ``founded_year`` is given). Entries at t are firms present at t but
    not at t-1, exits at t firms present at t-1 but not at t (a firm that changes cluster exits
    one and enters the other); both are missing in the first year of each region x cluster, and
    exits also where the region x cluster has no rows in t-1. Rows are sorted by region,
    cluster, year; region and cluster come back as plain values even from categorical input.

    Sums of wages, revenue, exports, R&D and patents are ratio estimates: where some firms of a
    group leave a column blank, the reporting firms' sum is scaled by the group's employment over
    theirs (the blank firms are taken to match them per employee), so that payroll / employment
    is the reporters' mean wage rather than diluted by firms that said nothing. Exports and R&D
    are scaled by revenue instead (over the firms that report both), so that export and R&D
    intensity are the reporters' own shares of turnover. A group where no firm reports the
    column, or only firms without employees (or revenue) do, gets a missing value.
    """
    rc, regions = _sorted_codes(firms["region"])
    cc, clusters = _sorted_codes(firms["cluster"])
    year_dtype = firms["year"].dtype if firms["year"].dtype.kind in "iu" else np.dtype("int64")
    year_values = firms["year"].to_numpy(dtype="int64")
    keep = (rc >= 0) & (cc >= 0)
    if not keep.all():  # rows without a key belong to no group (as in a pandas groupby)
        firms = firms.loc[keep]
        rc, cc, year_values = rc[keep], cc[keep], year_values[keep]
    year = year_values
    emp = firms["employees"].to_numpy(dtype="float64")
    n_rows = len(firms)
    if n_rows == 0:
        return _empty_panel(firms)

    ymin = int(year.min())
    span = int(year.max()) - ymin + 2  # + 1 leaves room for year + 1 (exits)
    yidx = year - ymin
    cell = rc * len(clusters) + cc
    cell *= span
    cell += yidx
    gid, gkeys = _dense(cell, (len(regions) * len(clusters)) * span)
    del cell
    n_groups = len(gkeys)

    # Order by group, largest firm first: ranks give the top four and the Gini sum.
    emp_int = emp.astype(np.int64)
    if np.array_equal(emp_int, emp) and emp.max(initial=0) < (1 << 40):
        top = int(emp_int.max(initial=0))
        key = gid * (top + 1)  # built in place: tens of millions of rows
        key += top
        key -= emp_int
        del emp_int
        order = _argsort_int(key)
        del key
    else:
        del emp_int
        order = np.lexsort((-emp, gid))
    g_sorted = gid[order]
    e_sorted = emp[order]
    counts = np.bincount(gid, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank_desc = np.arange(n_rows)
    rank_desc -= starts[g_sorted]
    total = _group_sum(g_sorted, e_sorted, n_groups)
    head = rank_desc < 4
    top4 = _group_sum(g_sorted[head], e_sorted[head], n_groups)
    # sum of (n - rank) * e = n * total - sum of rank * e
    iw = counts * total - _group_sum(g_sorted, rank_desc * e_sorted, n_groups)
    del order, g_sorted, e_sorted, rank_desc, head

    panel = pd.DataFrame(
        {
            "region": regions.take(gkeys // span // len(clusters)),
            "cluster": clusters.take(gkeys // span % len(clusters)),
            "year": (gkeys % span + ymin).astype(year_dtype),
            "employment": total,
            "establishments": counts.astype("int64"),
            "sme_employment": _group_sum(gid, np.where(emp < sme_threshold, emp, 0.0), n_groups),
            "top4_employment": top4,
        }
    )
    revenue = None
    for src, col in _SUMS.items():
        if src not in firms.columns:
            continue
        values = firms[src].to_numpy(dtype="float64", na_value=np.nan)
        if not np.isnan(values).any():
            panel[col] = _group_sum(gid, values, n_groups)
        elif src in _PER_REVENUE and revenue is not None:
            panel[col] = _ratio_estimate(gid, values, revenue, panel["output"].to_numpy(), n_groups)
        else:
            # Employment counts every firm, so a sum over the reporting firms alone would pull
            # payroll / employment down by the share that did not report.
            panel[col] = _ratio_estimate(gid, values, emp, total, n_groups)
        if src == "revenue":
            revenue = values
    count = counts.astype("float64")
    sq = _group_sum(gid, emp * emp, n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        panel["hhi"] = np.where(total > 0, sq / total**2, np.nan)
        gini = 2.0 * iw / (count * total) - (count + 1.0) / count
        panel["gini"] = np.where(total > 0, gini, np.nan)
    if "founded_year" in firms.columns:
        founded = firms["founded_year"].to_numpy(dtype="float64", na_value=np.nan)
        panel["median_firm_age"] = _median_by_group(gid, year - founded, n_groups)

    firm, n_firms = _firm_codes(firms["firm_id"])
    linked = _consecutive_by_table(rc, cc, firm, n_firms, yidx, span)
    if linked is None:
        linked = _consecutive_by_sort(rc * len(clusters) + cc, firm, n_firms, yidx, span)
    before, after = linked
    # Entries at t: rows without the firm in t-1; exits counted at t+1 from rows without t+1.
    entries = np.bincount(gid[~before], minlength=n_groups).astype("float64")
    exits_from = np.bincount(gid[~after], minlength=n_groups).astype("float64")
    # Exits at t are counted over the firms of t-1: the group one year earlier, when it exists.
    g_cell = gkeys // span
    previous = np.searchsorted(gkeys, gkeys - 1)
    has_previous = (gkeys > 0) & (gkeys[np.minimum(previous, n_groups - 1)] == gkeys - 1)
    exits = np.where(has_previous, exits_from[np.minimum(previous, n_groups - 1)], np.nan)
    first_year = np.ones(n_groups, dtype=bool)
    first_year[1:] = g_cell[1:] != g_cell[:-1]
    panel["entries"] = np.where(first_year, np.nan, entries)
    panel["exits"] = np.where(first_year, np.nan, exits)
    return panel


def _empty_panel(firms: pd.DataFrame) -> pd.DataFrame:
    columns = {
        "region": firms["region"].iloc[:0].astype(str),
        "cluster": firms["cluster"].iloc[:0].astype(str),
        "year": pd.Series(dtype="int64"),
    }
    names = ["employment", "establishments", "sme_employment", "top4_employment"]
    names += [col for src, col in _SUMS.items() if src in firms.columns]
    names += ["hhi", "gini"] + (["median_firm_age"] if "founded_year" in firms.columns else [])
    names += ["entries", "exits"]
    out = pd.DataFrame(columns)
    for name in names:
        out[name] = pd.Series(dtype="int64" if name == "establishments" else "float64")
    return out
