"""Paper-style figures of an Inf-CoP experiment, drawn from its tidy tables.

``make_figure(name, tables_dir, out_pdf)`` reads the CSV tables that the
aggregation step wrote into ``tables_dir`` (iterations, layers, epochs,
epoch_layers, methods, summary), draws figure ``name`` and writes ``out_pdf``
plus a PNG with the same stem beside it (for the multi-page similarity figure
the PNG shows the first page).  Both files are written atomically.

``FIGURES`` maps each figure name to a function ``fn(tables_dir) -> list of
matplotlib Figure`` (one Figure per PDF page); the functions are usable on
their own, e.g. in a notebook.

Conventions shared by every figure:

* mean over seeds, with a 95 % confidence band (Student-t interval, so the
  result is deterministic) wherever a point has several seeds;
* one colour per method, the same in every figure (``method_colors``): the
  study's methods lth/sap/ciap/giap/earlystop always get the same colours,
  other methods get the remaining palette colours in sorted-name order;
* one panel (row) per (dataset, arch);
* legends outside the axes, below the panels.

matplotlib is imported lazily (Agg backend) so importing this module is cheap.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import InfcopError
from .checkpoints import atomic_write

# ---------------------------------------------------------------------------
# Colours and ordering
# ---------------------------------------------------------------------------

CANONICAL_METHODS = ("lth", "sap", "ciap", "giap", "earlystop")

# Okabe-Ito colour-blind-safe colours for the study's own methods.
CANONICAL_COLORS = {
    "lth": "#0072B2",  # blue
    "sap": "#E69F00",  # orange
    "ciap": "#009E73",  # bluish green
    "giap": "#D55E00",  # vermillion
    "earlystop": "#CC79A7",  # reddish purple
}

# Colours for any other (user-defined) method, handed out in sorted-name order.
_EXTRA_COLORS = (
    "#8C564B",  # brown
    "#7B3FB5",  # violet
    "#17BECF",  # cyan
    "#BCBD22",  # olive
    "#7F7F7F",  # grey
    "#56B4E9",  # sky blue
    "#393B79",  # indigo
    "#AD494A",  # brick
    "#637939",  # moss
    "#E7BA52",  # sand
)

_STOP_PARAMS = {  # stop criterion -> its threshold column in methods.csv
    "infoflow": "infoflow_epsilon",
    "gradflow": "gradflow_epsilon",
    "accuracy": "accuracy_delta",
}
_PARAM_LABELS = {
    "infoflow_epsilon": "information-flow ε",
    "gradflow_epsilon": "gradient-flow ε",
    "accuracy_delta": "accuracy δ",
}


def method_order(methods) -> list[str]:
    """Methods in display order: the study's methods first (fixed order), then the rest sorted."""
    names = {str(m) for m in methods if not _isnan(m)}
    canon = [m for m in CANONICAL_METHODS if m in names]
    return canon + sorted(names - set(canon))


def method_colors(methods) -> dict[str, str]:
    """Map each method to a hex colour.

    lth/sap/ciap/giap/earlystop always get ``CANONICAL_COLORS``; every other
    method gets the next extra colour in sorted-name order, so the mapping
    depends only on the set of methods and is identical across figures.
    """
    names = {str(m) for m in methods if not _isnan(m)}
    colors = {m: CANONICAL_COLORS[m] for m in names if m in CANONICAL_COLORS}
    others = sorted(names - set(colors))
    for i, m in enumerate(others):
        if i < len(_EXTRA_COLORS):
            colors[m] = _EXTRA_COLORS[i]
        else:  # deterministic golden-ratio hues beyond the palette
            h = (0.13 + 0.618033988749895 * i) % 1.0
            r, g, b = colorsys.hls_to_rgb(h, 0.45, 0.65)
            colors[m] = "#{:02X}{:02X}{:02X}".format(int(r * 255), int(g * 255), int(b * 255))
    return colors


def _isnan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------

# Two-sided 95 % Student-t quantiles t_{0.975, dof}.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def _t975(dof: int) -> float:
    if dof < 1:
        return float("nan")
    if dof <= len(_T975):
        return _T975[dof - 1]
    if dof <= 40:
        return 2.021
    if dof <= 60:
        return 2.000
    if dof <= 120:
        return 1.980
    return 1.960


def mean_ci(df: pd.DataFrame, by, value: str) -> pd.DataFrame:
    """Mean of ``value`` per group with a 95 % t-interval (``lo``/``hi``; equal to the mean for n < 2).

    Returns columns ``by + [mean, lo, hi, n]`` sorted by ``by``; NaN values are ignored.
    """
    by = [by] if isinstance(by, str) else list(by)
    d = df[by + [value]].dropna(subset=[value])
    if d.empty:
        return pd.DataFrame(columns=by + ["mean", "lo", "hi", "n"])
    g = d.groupby(by, sort=True)[value].agg(["mean", "std", "count"]).reset_index()
    t = np.array([_t975(int(n) - 1) for n in g["count"]])
    half = np.where(g["count"] > 1, t * g["std"].fillna(0.0) / np.sqrt(g["count"]), 0.0)
    g["lo"] = g["mean"] - half
    g["hi"] = g["mean"] + half
    g = g.rename(columns={"count": "n"}).drop(columns="std")
    return g[by + ["mean", "lo", "hi", "n"]]


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

_KEYS = ["dataset", "arch", "method"]


def _read(tables_dir: Path, name: str, required) -> pd.DataFrame:
    """Read ``<tables_dir>/<name>.csv``; an empty file gives an empty frame with ``required`` columns."""
    path = Path(tables_dir) / f"{name}.csv"
    if not path.is_file():
        raise InfcopError(f"table {path} not found")
    try:
        df = pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in dict.fromkeys(list(df.columns) + list(required))})
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InfcopError(f"table {path.name} lacks column(s) {', '.join(missing)}")
    for c in ("dataset", "arch", "method", "layer", "metric", "stop_reason", "stops", "pruner"):
        if c in df.columns:
            df[c] = df[c].where(df[c].isna(), df[c].astype(str))
    return df


def _read_methods(tables_dir: Path) -> pd.DataFrame:
    cols = ["method", "pruner", "stops", "infoflow_epsilon", "gradflow_epsilon", "accuracy_delta", "max_epochs"]
    m = _read(tables_dir, "methods", ["method"])
    for c in cols:
        if c not in m.columns:
            m[c] = np.nan
    for c in ("infoflow_epsilon", "gradflow_epsilon", "accuracy_delta", "max_epochs"):
        m[c] = pd.to_numeric(m[c], errors="coerce")
    return m


def parse_stops(stops) -> tuple[str, ...]:
    """``'infoflow+accuracy'`` -> ``('accuracy', 'infoflow')``; empty, NaN or 'budget' -> ``()``."""
    if stops is None or _isnan(stops):
        return ()
    parts = {p.strip().lower() for p in str(stops).split("+")}
    return tuple(sorted(p for p in parts if p and p not in ("budget", "none", "nan", "fixed")))


def _method_info(methods: pd.DataFrame, method: str) -> dict:
    row = methods[methods["method"] == method]
    if row.empty:
        return {"stops": (), "infoflow_epsilon": np.nan, "gradflow_epsilon": np.nan,
                "accuracy_delta": np.nan, "max_epochs": np.nan, "pruner": None}
    r = row.iloc[0]
    return {"stops": parse_stops(r["stops"]), "infoflow_epsilon": r["infoflow_epsilon"],
            "gradflow_epsilon": r["gradflow_epsilon"], "accuracy_delta": r["accuracy_delta"],
            "max_epochs": r["max_epochs"], "pruner": r["pruner"]}


def _experiment_colors(methods: pd.DataFrame, *dfs: pd.DataFrame) -> dict[str, str]:
    """Colours keyed by every method the experiment knows (methods.csv plus the data tables)."""
    names = set(methods["method"].dropna().astype(str)) if "method" in methods else set()
    for d in dfs:
        if "method" in d:
            names |= set(d["method"].dropna().astype(str))
    return method_colors(names)


def _panels(df: pd.DataFrame) -> list[tuple[str, str]]:
    if df.empty:
        return []
    return sorted({(str(a), str(b)) for a, b in zip(df["dataset"], df["arch"])})


def _sel(df: pd.DataFrame, **eq) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for k, v in eq.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def _as_bool(s: pd.Series) -> pd.Series:
    if s.dtype == bool:
        return s
    return s.map(lambda v: str(v).strip().lower() in ("true", "1", "yes", "1.0"))


# ---------------------------------------------------------------------------
# Matplotlib helpers
# ---------------------------------------------------------------------------

_RC = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "pdf.fonttype": 42,
    "figure.dpi": 100,
}
_PNG_DPI = 150
_PNG_MAX_PX = 4500
_BAND_ALPHA = 0.18


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


def _figure_fn(fn: Callable) -> Callable:
    """Run a figure function under the package's rc style; accept str or Path."""

    @functools.wraps(fn)
    def wrapper(tables_dir) -> list:
        mpl = _mpl()
        with mpl.rc_context(_RC):
            figs = fn(Path(tables_dir))
        return figs if isinstance(figs, list) else [figs]

    return wrapper


def _new_figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def _message_figure(title: str, message: str, detail: str = ""):
    fig = _new_figure(7.0, 3.2)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.62, message, ha="center", va="center", fontsize=13, transform=ax.transAxes)
    if detail:
        ax.text(0.5, 0.42, detail, ha="center", va="top", fontsize=7.5, color="0.3",
                transform=ax.transAxes, family="monospace", multialignment="left")
    fig.suptitle(title)
    return fig


def _no_data(title: str, table: str):
    return _message_figure(title, "no data", f"{table} has no rows for this figure")


def _band(ax, x, lo, hi, n, color, clip=(None, None)):
    """Shade the 95% CI (clipped to the quantity's physical range) where some point has several seeds."""
    if len(n) and np.nanmax(np.asarray(n, dtype=float)) > 1:
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        if clip[0] is not None or clip[1] is not None:
            lo, hi = np.clip(lo, clip[0], clip[1]), np.clip(hi, clip[0], clip[1])
        ax.fill_between(np.asarray(x, float), lo, hi, color=color, alpha=_BAND_ALPHA, lw=0)


_PCT_TICKS = (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
_PCT_TICKS_FINE = (100, 80, 60, 50, 40, 30, 20, 15, 10, 8, 6, 5, 4, 3, 2, 1.5, 1, 0.8, 0.6, 0.5, 0.4, 0.3,
                   0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01)


def _percent_log_axis(ax, values, axis: str = "x", reverse: bool = False):
    """Log axis for percentages with ticks at 100/50/20/10/... %."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    v = np.asarray([x for x in values if np.isfinite(x) and x > 0], float)
    lo, hi = (v.min(), v.max()) if v.size else (1.0, 100.0)
    lo, hi = lo / 1.25, hi * 1.25
    ticks = [t for t in _PCT_TICKS if lo <= t <= hi]
    if len(ticks) < 4:
        ticks = [t for t in _PCT_TICKS_FINE if lo <= t <= hi]
        if len(ticks) > 8:
            ticks = ticks[::2]
    ticks = ticks or [float(f"{np.sqrt(lo * hi):.2g}")]
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    setter("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(FixedLocator(ticks))
    a.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}%"))
    a.set_minor_locator(NullLocator())
    if axis == "x":
        ax.set_xlim((hi, lo) if reverse else (lo, hi))
    else:
        ax.set_ylim((hi, lo) if reverse else (lo, hi))


def _maybe_log(ax, values, axis: str = "y", decades: float = 1.0):
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x)], float)
    if v.size and (v > 0).all() and v.max() / v.min() > 10 ** decades:
        _log_axis(ax, axis)
        return True
    return False


def _log_axis(ax, axis: str = "y"):
    """Log scale with light minor ticks (at 2x and 5x, unlabelled: full minor ticks are slow to draw)."""
    from matplotlib.ticker import LogLocator, NullFormatter

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    a.set_minor_formatter(NullFormatter())


def _int_ticks(ax, axis: str = "x"):
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def _panel_title(ds: str, arch: str) -> str:
    return f"{ds} / {arch}"


def _method_handles(order, colors, marker="o"):
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=colors[m], marker=marker, ms=4, label=m) for m in order]


def _legend_below(fig, handles, ncol=None):
    if not handles:
        return
    if ncol is None:  # as many columns as fit the figure's width
        widest = max(0.45 + 0.065 * len(str(h.get_label())) for h in handles)
        ncol = max(1, min(len(handles), int(fig.get_figwidth() * 0.95 // widest)))
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)


def _discrete_cmap(n_max: int, name: str = "viridis"):
    """Colormap + norm for integer levels 1..n_max, and a ScalarMappable for the colorbar."""
    import matplotlib as mpl
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm

    n_max = max(int(n_max), 1)
    cmap = mpl.colormaps[name].resampled(max(n_max, 2))
    if n_max == 1:
        cmap = mpl.colors.ListedColormap([mpl.colormaps[name](0.5)])
    norm = BoundaryNorm(np.arange(0.5, n_max + 1.5), cmap.N)
    return cmap, norm, ScalarMappable(norm=norm, cmap=cmap)


def _colorbar_ticks(n_max: int) -> list[int]:
    step = max(1, int(math.ceil(n_max / 10)))
    return list(range(1, n_max + 1, step))


# ---------------------------------------------------------------------------
# similarity.pdf: one page per (dataset, arch, method)
# ---------------------------------------------------------------------------

_LAYER_METRICS = (
    ("connectivity", "information flow", "connectivity", "layer pair"),
    ("gradflow", "gradient flow", "mean |∂L/∂W|", "layer"),
    ("similarity", "activation similarity to dense", "similarity", "layer"),
)
_DIST = {  # kind -> (column, colour, linestyle, label)
    "infoflow": ("info_distance", "black", "-", "information-flow distance"),
    "gradflow": ("grad_distance", "0.45", "--", "gradient-flow distance"),
}
_STOP_COLOR = "#C0392B"
_SIMILARITY_COLUMNS = ("distance", "connectivity", "gradflow", "similarity", "val_accuracy")


@_figure_fn
def similarity(tables_dir: Path) -> list:
    """The study's signature figure: per (dataset, arch, method) page, one row per IMP iteration."""
    ep = _read(tables_dir, "epochs", _KEYS + ["seed", "iteration", "epoch", "val_accuracy",
                                              "info_distance", "grad_distance", "stopped", "stop_reason"])
    el = _read(tables_dir, "epoch_layers", _KEYS + ["seed", "iteration", "epoch", "metric", "layer",
                                                    "layer_index", "value"])
    ly = _read(tables_dir, "layers", _KEYS + ["seed", "iteration", "metric", "layer", "layer_index", "value"])
    it = _read(tables_dir, "iterations", _KEYS + ["seed", "iteration", "remaining_weights", "val_accuracy"])
    methods = _read_methods(tables_dir)
    if ep.empty:
        return [_no_data("Flow similarity during retraining", "epochs.csv")]
    ep = ep.copy()
    ep["stopped"] = _as_bool(ep["stopped"])
    pages = []
    for ds, arch in _panels(ep):
        pe = _sel(ep, dataset=ds, arch=arch)
        for m in method_order(pe["method"].unique()):
            pages.append(_similarity_page(ds, arch, m, _sel(pe, method=m),
                                          _sel(el, dataset=ds, arch=arch, method=m) if not el.empty else el,
                                          _sel(ly, dataset=ds, arch=arch) if not ly.empty else ly,
                                          _sel(it, dataset=ds, arch=arch) if not it.empty else it,
                                          _method_info(methods, m)))
    return pages


def _stop_epochs(rows: pd.DataFrame) -> list[tuple[int, str]]:
    """(stopping epoch, reason) per seed; a seed without a stopped row ran its whole budget."""
    out = []
    for _, s in rows.groupby("seed"):
        st = s[s["stopped"]]
        if len(st):
            r = st.sort_values("epoch").iloc[0]
            reason = r["stop_reason"] if isinstance(r["stop_reason"], str) and r["stop_reason"] else "stop"
            out.append((int(r["epoch"]), reason))
        else:
            out.append((int(s["epoch"].max()), "budget"))
    return out


def _similarity_page(ds, arch, method, ep, el, ly, it, info):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    iters = sorted(int(i) for i in ep["iteration"].unique())
    n = len(iters)
    n_seeds = ep["seed"].nunique()
    max_epoch = int(ep["epoch"].max())
    cmap, norm, sm = _discrete_cmap(max_epoch)

    stops = info["stops"]
    kinds = [k for k in ("infoflow", "gradflow") if k in stops] or ["infoflow", "gradflow"]
    dense_layers = {}
    if not ly.empty:
        d0 = ly[ly["iteration"] == 0]
        for metric, *_ in _LAYER_METRICS:
            dm = d0[d0["metric"] == metric]
            if len(dm):
                dense_layers[metric] = dm.groupby("layer_index", sort=True)["value"].mean()
    layer_names = {}
    for src in (el, ly):
        if not src.empty:
            for metric, g in src.groupby("metric"):
                layer_names.setdefault(metric, {}).update(
                    dict(zip(g["layer_index"].astype(int), g["layer"].astype(str))))
    dense_val = np.nan
    if not it.empty:
        d0 = it[it["iteration"] == 0]["val_accuracy"].dropna()
        dense_val = float(d0.mean()) * 100 if len(d0) else np.nan
    acc_target = (dense_val - 100 * info["accuracy_delta"]
                  if "accuracy" in stops and np.isfinite(info["accuracy_delta"]) else np.nan)

    # Fixed layout in inches (constrained layout is too slow for pages of up to ~75 axes).
    longest = max([len(v) for names in layer_names.values() for v in names.values()] or [4])
    W, left, right, gap = 15.0, 0.7, 0.25, 0.8
    ratios = np.array([1, 1.35, 1.35, 1.35, 1])
    col_w = (W - left - right - 4 * gap) * ratios / ratios.sum()
    col_x = left + np.concatenate([[0], np.cumsum(col_w + gap)[:-1]])
    top, col_titles_h, row_title_h, ax_h, row_gap = 0.45, 0.25, 0.3, 1.35, 0.3
    bottom_ticks = max(0.25, 0.022 * longest + 0.1) + 0.3
    legend_h = 0.85
    H = top + col_titles_h + n * (row_title_h + ax_h + row_gap) + bottom_ticks + legend_h
    fig = Figure(figsize=(W, H))
    fig.suptitle(f"{ds} / {arch} — {method}: retraining after each IMP iteration "
                 f"(mean over {n_seeds} seed{'s' if n_seeds != 1 else ''})", fontsize=11, y=1 - 0.15 / H,
                 va="top")

    def add_axes(x, y_top, w, h):
        return fig.add_axes((x / W, 1 - (y_top + h) / H, w / W, h / H))

    col_titles = ["flow distance to dense"] + [t for _, t, _, _ in _LAYER_METRICS] + ["validation accuracy"]
    y = top
    for r, k in enumerate(iters):
        last = r == n - 1
        rows = ep[ep["iteration"] == k]
        stops_k = _stop_epochs(rows)
        rw = it[it["iteration"] == k]["remaining_weights"] if not it.empty else pd.Series(dtype=float)
        if rw.dropna().empty and "remaining_weights" in rows:
            rw = rows["remaining_weights"]
        rw = pd.to_numeric(rw, errors="coerce")
        rw_txt = f"{100 * rw.mean():.3g}% weights remaining" if rw.notna().any() else "remaining weights unknown"
        fig.text(0.1 / W, 1 - (y + row_title_h - 0.1) / H, f"iteration {k} · {rw_txt} · {_stop_text(stops_k)}",
                 fontsize=9, fontweight="bold", gid=f"row-title-{k}")
        y += row_title_h + (col_titles_h if r == 0 else 0.0)
        axes = [add_axes(col_x[j], y, col_w[j], ax_h) for j in range(5)]
        for ax, key in zip(axes, _SIMILARITY_COLUMNS):
            ax.set_label(f"iteration {k}: {key}")  # lets callers (and tests) find a panel
        y += ax_h + row_gap

        # (1) distances to the dense network's flows
        ax = axes[0]
        shown = []
        for kind in kinds:
            col, color, ls, _ = _DIST[kind]
            a = mean_ci(rows, "epoch", col)
            if a.empty:
                continue
            ax.plot(a["epoch"], a["mean"], color=color, ls=ls, marker="o", ms=2.5)
            _band(ax, a["epoch"], a["lo"], a["hi"], a["n"], color, clip=(0, None))
            shown.extend(a["mean"].tolist())
            eps = info.get(f"{kind}_epsilon", np.nan)
            if np.isfinite(eps):
                ax.axhline(eps, color=color, ls=":", lw=1.1)
                shown.append(eps)
        if shown:
            if _maybe_log(ax, shown, "y", decades=1.5):
                v = np.asarray(shown, float)
                ax.set_ylim(v.min() / 1.6, v.max() * 1.6)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_ylabel("L2 distance")

        # (2-4) per-layer vectors, one curve per retraining epoch
        for j, (metric, _, ylabel, xlabel) in enumerate(_LAYER_METRICS, start=1):
            ax = axes[j]
            sub = el[(el["iteration"] == k) & (el["metric"] == metric)] if not el.empty else el
            vals = []
            if len(sub):
                a = sub.groupby(["epoch", "layer_index"], sort=True)["value"].mean().reset_index()
                for e, g in a.groupby("epoch", sort=True):
                    ax.plot(g["layer_index"], g["value"], color=cmap(norm(int(e))), lw=1.0, marker=".", ms=3)
                    vals.extend(g["value"].tolist())
            if not vals:
                ax.text(0.5, 0.95, "not measured during retraining", ha="center", va="top", zorder=10,
                        transform=ax.transAxes, color="0.3", bbox={"fc": "white", "ec": "none", "alpha": 0.85})
            if metric in dense_layers:
                d = dense_layers[metric]
                ax.plot(d.index, d.values, color="black", ls="--", lw=1.3, zorder=5,
                        marker="_" if len(d) == 1 else None, ms=10)
                vals.extend(d.tolist())
            if vals and metric == "gradflow":
                _maybe_log(ax, vals, "y")
            names = layer_names.get(metric, {})
            idx = sorted(names)
            ax.set_xticks(idx)
            ax.set_xticklabels([names[i] for i in idx] if last else [""] * len(idx),
                               rotation=40, ha="right", rotation_mode="anchor", fontsize=6)
            if idx:
                ax.set_xlim(idx[0] - 0.3, idx[-1] + 0.3)
            ax.set_ylabel(ylabel)
            if last:
                ax.set_xlabel(xlabel)

        # (5) validation accuracy
        ax = axes[4]
        a = mean_ci(rows.assign(v=pd.to_numeric(rows["val_accuracy"], errors="coerce") * 100), "epoch", "v")
        if len(a):
            ax.plot(a["epoch"], a["mean"], color="black", marker="o", ms=2.5)
            _band(ax, a["epoch"], a["lo"], a["hi"], a["n"], "black", clip=(0, 100))
        if np.isfinite(dense_val):
            ax.axhline(dense_val, color="black", ls="--", lw=1.1)
        if np.isfinite(acc_target):
            ax.axhline(acc_target, color=_STOP_COLOR, ls=":", lw=1.1)
        ax.set_ylabel("val. accuracy (%)")

        for ax in (axes[0], axes[4]):
            _int_ticks(ax)
            ax.set_xlim(0.5, max_epoch + 0.5)
            for e, cnt in pd.Series([s for s, _ in stops_k]).value_counts().items():
                ax.axvline(e, color=_STOP_COLOR, lw=1.0, alpha=0.35 + 0.65 * cnt / len(stops_k), zorder=0)
            if last:
                ax.set_xlabel("retraining epoch")
        if r == 0:
            for ax, t in zip(axes, col_titles):
                ax.set_title(t)

    for ax in fig.axes:  # minor log ticks cost much drawing time on pages with ~75 axes
        ax.minorticks_off()

    # legend + colorbar below the last row
    handles = []
    for kind in kinds:
        _, color, ls, label = _DIST[kind]
        handles.append(Line2D([], [], color=color, ls=ls, marker="o", ms=2.5, label=label))
        if np.isfinite(info.get(f"{kind}_epsilon", np.nan)):
            handles.append(Line2D([], [], color=color, ls=":",
                                  label=f"ε = {info[f'{kind}_epsilon']:g} ({kind} stop threshold)"))
    handles.append(Line2D([], [], color=_STOP_COLOR, lw=1.0, label="stopping epoch (per seed)"))
    handles.append(Line2D([], [], color="black", ls="--", label="dense network (iteration 0)"))
    handles.append(Line2D([], [], color="black", marker="o", ms=2.5, label="val. accuracy"))
    if np.isfinite(acc_target):
        handles.append(Line2D([], [], color=_STOP_COLOR, ls=":", label="accuracy stop target"))
    if n_seeds > 1:
        handles.append(Patch(color="black", alpha=_BAND_ALPHA, label="95% CI over seeds"))
    y_leg = H - legend_h
    fig.legend(handles=handles, loc="center left", ncol=3, frameon=False,
               bbox_to_anchor=(left / W, 1 - (y_leg + 0.4) / H))
    cax = add_axes(W * 0.62, y_leg + 0.3, W * 0.33, 0.16)
    cb = fig.colorbar(sm, cax=cax, orientation="horizontal")
    cb.set_ticks(_colorbar_ticks(max_epoch))
    cb.set_label("retraining epoch (curve colour in the per-layer panels)")
    return fig


def _stop_text(stops_k: list[tuple[int, str]]) -> str:
    if not stops_k:
        return "no retraining"
    epochs = [e for e, _ in stops_k]
    reasons = sorted({r for _, r in stops_k})
    where = f"epoch {epochs[0]}" if min(epochs) == max(epochs) else \
        f"epochs {min(epochs)}–{max(epochs)} (mean {np.mean(epochs):.1f})"
    return f"stopped at {where} ({'/'.join(reasons)})"


# ---------------------------------------------------------------------------
# connectivity.pdf / gradient.pdf: per-layer flow at the end of each iteration
# ---------------------------------------------------------------------------


def _layer_flow_figure(tables_dir: Path, metric: str, title: str, ylabel: str, xlabel: str):
    from matplotlib.lines import Line2D

    ly = _read(tables_dir, "layers", _KEYS + ["seed", "iteration", "metric", "layer", "layer_index", "value"])
    methods = _read_methods(tables_dir)
    d = ly[ly["metric"] == metric] if not ly.empty else ly
    if d.empty:
        return _no_data(title, f"layers.csv (metric={metric})")
    colors = _experiment_colors(methods, ly)
    panels = _panels(d)
    order = method_order(d["method"].unique())
    k_max = int(d["iteration"].max())
    cmap, norm, sm = _discrete_cmap(max(k_max, 1))
    nc = min(len(order), 4)  # methods wrap onto several rows per (dataset, arch)
    per_panel = int(math.ceil(len(order) / nc))
    nr = len(panels) * per_panel
    longest = max(len(str(v)) for v in d["layer"].unique())
    fig = _new_figure(max(3.3 * nc + 1.3, 6.0), (2.2 + 0.05 * longest) * nr + 1.0)
    fig.suptitle(f"{title} at the end of each IMP iteration (mean over seeds)")
    # no sharey: shared log axes make matplotlib's tick layout quadratic; limits are synced by hand
    axes = fig.subplots(nr, nc, squeeze=False)
    for p, (ds, arch) in enumerate(panels):
        pd_ = _sel(d, dataset=ds, arch=arch)
        names = dict(zip(pd_["layer_index"].astype(int), pd_["layer"].astype(str)))
        idx = sorted(names)
        dense = pd_[pd_["iteration"] == 0].groupby("layer_index", sort=True)["value"].mean()
        means = pd_.groupby(["method", "iteration", "layer_index"])["value"].mean()
        logy = _maybe_log(axes[p * per_panel, 0], means, "y")
        v = means[np.isfinite(means)]
        if logy:
            ylim = (v.min() / 1.3, v.max() * 1.3)
        else:
            pad = 0.05 * (v.max() - v.min() or abs(v.max()) or 1.0)
            ylim = (v.min() - pad, v.max() + pad)
        for i, m in enumerate(order):
            r, c = p * per_panel + i // nc, i % nc
            ax = axes[r, c]
            sub = _sel(pd_, method=m)
            a = sub[sub["iteration"] > 0].groupby(["iteration", "layer_index"], sort=True)["value"].mean()
            for k, g in a.reset_index().groupby("iteration", sort=True):
                ax.plot(g["layer_index"], g["value"], color=cmap(norm(int(k))), lw=1.1, marker=".", ms=3)
            if len(dense):
                ax.plot(dense.index, dense.values, color="black", ls="--", lw=1.2, zorder=5)
            if sub.empty:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.4")
            if logy:
                _log_axis(ax, "y")
            ax.set_ylim(*ylim)
            ax.set_title(f"{ds} / {arch} — {m}", color=colors.get(m, "black"), fontweight="bold")
            ax.set_xticks(idx)
            ax.set_xticklabels([names[j] for j in idx], rotation=40, ha="right", rotation_mode="anchor",
                               fontsize=6)
            if idx:
                ax.set_xlim(idx[0] - 0.3, idx[-1] + 0.3)
            ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel(ylabel)
            else:
                ax.tick_params(labelleft=False)
        for i in range(len(order), per_panel * nc):
            axes[p * per_panel + i // nc, i % nc].set_axis_off()
    cb = fig.colorbar(sm, ax=axes, shrink=min(0.9, 0.6 / nr + 0.3), aspect=25)
    cb.set_ticks(_colorbar_ticks(k_max))
    cb.set_label("IMP iteration")
    _legend_below(fig, [Line2D([], [], color="black", ls="--", label="dense network (iteration 0)")])
    return fig


@_figure_fn
def connectivity(tables_dir: Path):
    """Information flow (connectivity per layer pair) after each iteration, one subplot per method."""
    return _layer_flow_figure(tables_dir, "connectivity", "Information flow",
                              "connectivity (mean Pearson r)", "layer pair")


@_figure_fn
def gradient(tables_dir: Path):
    """Gradient flow (mean |dL/dW| per layer) after each iteration, one subplot per method."""
    return _layer_flow_figure(tables_dir, "gradflow", "Gradient flow", "mean |∂L/∂W|", "layer")


# ---------------------------------------------------------------------------
# comparison / accuracy / epochs / cost
# ---------------------------------------------------------------------------

_IT_COLS = _KEYS + ["seed", "iteration", "remaining_weights", "test_accuracy", "epochs_trained"]


def _iterations(tables_dir: Path, extra=()) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    it = _read(tables_dir, "iterations", _IT_COLS + list(extra))
    methods = _read_methods(tables_dir)
    if not it.empty:
        it = it.copy()
        for c in ["iteration", "remaining_weights", "test_accuracy", "epochs_trained", *extra]:
            it[c] = pd.to_numeric(it[c], errors="coerce")
    return it, methods, _experiment_colors(methods, it)


def _common_budget(methods: pd.DataFrame, order) -> float:
    b = methods[methods["method"].isin(order)]["max_epochs"].dropna().unique()
    return float(b[0]) if len(b) == 1 else np.nan


@_figure_fn
def comparison(tables_dir: Path):
    """Test accuracy, retraining epochs and remaining weights against IMP iteration, all methods."""
    from matplotlib.lines import Line2D

    it, methods, colors = _iterations(tables_dir)
    if it.empty:
        return _no_data("Method comparison", "iterations.csv")
    panels = _panels(it)
    order = method_order(it["method"].unique())
    nr = len(panels)
    fig = _new_figure(12.0, 2.9 * nr + 1.0)
    fig.suptitle("Methods across IMP iterations (mean over seeds, 95% CI)")
    axes = fig.subplots(nr, 3, squeeze=False)
    budget = _common_budget(methods, order)
    for r, (ds, arch) in enumerate(panels):
        p = _sel(it, dataset=ds, arch=arch)
        rw_all = []
        for m in order:
            s = _sel(p, method=m)
            if s.empty:
                continue
            c = colors[m]
            specs = [(0, s.assign(v=s["test_accuracy"] * 100)),
                     (1, s[s["iteration"] > 0].assign(v=s["epochs_trained"])),
                     (2, s.assign(v=s["remaining_weights"] * 100))]
            for j, frame in specs:
                a = mean_ci(frame, "iteration", "v")
                axes[r, j].plot(a["iteration"], a["mean"], color=c, marker="o", ms=3.5, label=m)
                clip = (0, None) if j == 1 else (0, 100)
                _band(axes[r, j], a["iteration"], a["lo"], a["hi"], a["n"], c, clip=clip)
                if j == 2:
                    rw_all.extend(a["mean"].tolist())
        if np.isfinite(budget):
            axes[r, 1].axhline(budget, color="0.5", ls=":", lw=1)
        _percent_log_axis(axes[r, 2], rw_all, "y")
        axes[r, 0].set_ylabel("test accuracy (%)")
        axes[r, 1].set_ylabel("retraining epochs")
        axes[r, 2].set_ylabel("remaining weights (%)")
        for j, t in enumerate(("test accuracy", "retraining epochs per iteration", "remaining weights")):
            axes[r, j].set_title(f"{ds} / {arch} — {t}")
            _int_ticks(axes[r, j])
            axes[r, j].set_xlabel("IMP iteration" if r == nr - 1 else "")
        _int_ticks(axes[r, 1], "y")
    handles = _method_handles(order, colors)
    if np.isfinite(budget):
        handles.append(Line2D([], [], color="0.5", ls=":", label=f"epoch budget ({budget:g})"))
    _legend_below(fig, handles)
    return fig


def _panel_grid(n: int, w: float = 4.6, h: float = 3.3, max_cols: int = 3):
    nc = min(n, max_cols)
    nr = int(math.ceil(n / nc))
    fig = _new_figure(max(w * nc, 6.0), h * nr + 0.9)
    axes = fig.subplots(nr, nc, squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_axis_off()
    return fig, flat[:n]


@_figure_fn
def accuracy(tables_dir: Path):
    """Test accuracy against remaining weights (log x, sparser to the right), dense accuracy marked."""
    from matplotlib.lines import Line2D

    it, methods, colors = _iterations(tables_dir)
    if it.empty:
        return _no_data("Accuracy vs. sparsity", "iterations.csv")
    panels = _panels(it)
    order = method_order(it["method"].unique())
    fig, axes = _panel_grid(len(panels))
    fig.suptitle("Test accuracy against remaining weights (mean over seeds, 95% CI)")
    for ax, (ds, arch) in zip(axes, panels):
        p = _sel(it, dataset=ds, arch=arch)
        xs = []
        for m in order:
            s = _sel(p, method=m)
            if s.empty:
                continue
            acc = mean_ci(s.assign(v=s["test_accuracy"] * 100), "iteration", "v")
            rw = mean_ci(s.assign(v=s["remaining_weights"] * 100), "iteration", "v")
            a = acc.merge(rw, on="iteration", suffixes=("", "_rw")).sort_values("mean_rw", ascending=False)
            c = colors[m]
            ax.plot(a["mean_rw"], a["mean"], color=c, marker="o", ms=3.5)
            _band(ax, a["mean_rw"], a["lo"], a["hi"], a["n"], c, clip=(0, 100))
            xs.extend(a["mean_rw"].tolist())
        dense = p[p["iteration"] == 0]["test_accuracy"].dropna()
        if len(dense):
            ax.axhline(dense.mean() * 100, color="black", ls="--", lw=1)
        _percent_log_axis(ax, xs, "x", reverse=True)
        ax.set_xlabel("remaining weights (%, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(_panel_title(ds, arch))
    handles = _method_handles(order, colors)
    handles.append(Line2D([], [], color="black", ls="--", label="dense network"))
    _legend_below(fig, handles)
    return fig


@_figure_fn
def epochs(tables_dir: Path):
    """Retraining epochs per IMP iteration per method: grouped bars with 95% CI error bars."""
    from matplotlib.lines import Line2D

    it, methods, colors = _iterations(tables_dir)
    it = it[it["iteration"] > 0] if not it.empty else it
    if it.empty:
        return _no_data("Retraining epochs", "iterations.csv")
    panels = _panels(it)
    order = method_order(it["method"].unique())
    k_max = int(it["iteration"].max())
    width = 0.8 / len(order)
    fig = _new_figure(max(7.0, min(16.0, 1.0 + 0.32 * k_max * len(order))), 2.8 * len(panels) + 0.9)
    fig.suptitle("Retraining epochs per IMP iteration (mean over seeds, 95% CI)")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    budget = _common_budget(methods, order)
    for ax, (ds, arch) in zip(axes, panels):
        p = _sel(it, dataset=ds, arch=arch)
        for i, m in enumerate(order):
            a = mean_ci(_sel(p, method=m), "iteration", "epochs_trained")
            if a.empty:
                continue
            x = a["iteration"].to_numpy(float) + (i - (len(order) - 1) / 2) * width
            yerr = (np.vstack([a["mean"] - a["lo"].clip(lower=0), a["hi"] - a["mean"]])
                    if a["n"].max() > 1 else None)
            ax.bar(x, a["mean"], width=width * 0.95, color=colors[m], yerr=yerr,
                   error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "0.2"})
        if np.isfinite(budget):
            ax.axhline(budget, color="0.5", ls=":", lw=1)
        ax.set_xticks(range(1, k_max + 1))
        ax.set_xlim(0.4, k_max + 0.6)
        ax.grid(axis="x", visible=False)
        _int_ticks(ax, "y")
        ax.set_ylabel("retraining epochs")
        ax.set_title(_panel_title(ds, arch))
    axes[-1].set_xlabel("IMP iteration")
    from matplotlib.patches import Patch
    handles = [Patch(color=colors[m], label=m) for m in order]
    if np.isfinite(budget):
        handles.append(Line2D([], [], color="0.5", ls=":", label=f"epoch budget ({budget:g})"))
    _legend_below(fig, handles)
    return fig


@_figure_fn
def cost(tables_dir: Path):
    """Cumulative retraining epochs and seconds against remaining weights, per method."""
    it, methods, colors = _iterations(tables_dir, extra=("train_seconds", "flow_seconds"))
    if it.empty:
        return _no_data("Cumulative retraining cost", "iterations.csv")
    it = it.sort_values(_KEYS + ["seed", "iteration"]).copy()
    retrain = it["iteration"] > 0  # iteration 0 is the shared dense training: not a retraining cost
    it["ep"] = np.where(retrain, it["epochs_trained"].fillna(0), 0.0)
    it["sec"] = np.where(retrain, it["train_seconds"].fillna(0) + it["flow_seconds"].fillna(0), 0.0)
    g = it.groupby(_KEYS + ["seed"], sort=False)
    it["cum_ep"] = g["ep"].cumsum()
    it["cum_sec"] = g["sec"].cumsum()
    panels = _panels(it)
    order = method_order(it["method"].unique())
    nr = len(panels)
    fig = _new_figure(10.5, 3.0 * nr + 1.0)
    fig.suptitle("Cumulative retraining cost of the pruning search (mean over seeds, 95% CI)")
    axes = fig.subplots(nr, 2, squeeze=False)
    sec_scale, sec_unit = 1.0, "seconds"
    if it["cum_sec"].max() > 3 * 3600:
        sec_scale, sec_unit = 3600.0, "hours"
    for r, (ds, arch) in enumerate(panels):
        p = _sel(it, dataset=ds, arch=arch)
        xs = []
        for m in order:
            s = _sel(p, method=m)
            if s.empty:
                continue
            rw = mean_ci(s.assign(v=s["remaining_weights"] * 100), "iteration", "v")
            for j, col, scale in ((0, "cum_ep", 1.0), (1, "cum_sec", sec_scale)):
                a = mean_ci(s.assign(v=s[col] / scale), "iteration", "v").merge(
                    rw[["iteration", "mean"]].rename(columns={"mean": "x"}), on="iteration")
                axes[r, j].plot(a["x"], a["mean"], color=colors[m], marker="o", ms=3.5)
                _band(axes[r, j], a["x"], a["lo"], a["hi"], a["n"], colors[m], clip=(0, None))
                xs.extend(a["x"].tolist())
        for j, lab in enumerate(("cumulative retraining epochs", f"cumulative {sec_unit} (train + flow)")):
            ax = axes[r, j]
            _percent_log_axis(ax, xs, "x", reverse=True)
            ax.set_ylabel(lab)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("remaining weights (%, log scale)" if r == nr - 1 else "")
            ax.set_title(f"{ds} / {arch} — {'epochs' if j == 0 else 'wall-clock ' + sec_unit}")
    _legend_below(fig, _method_handles(order, colors))
    return fig


# ---------------------------------------------------------------------------
# ablation.pdf: epsilon sweeps
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EpsilonSweep:
    """Methods sharing pruner, stop criteria and budget that differ only in one stop threshold."""

    pruner: str
    stops: tuple[str, ...]
    parameter: str  # infoflow_epsilon | gradflow_epsilon | accuracy_delta
    methods: tuple[str, ...]  # sorted by threshold value
    values: tuple[float, ...]

    @property
    def label(self) -> str:
        return f"{self.pruner} + {'+'.join(self.stops)} stop ({', '.join(self.methods)})"


def find_epsilon_sweeps(methods: pd.DataFrame) -> list[EpsilonSweep]:
    """Detect epsilon sweeps in methods.csv.

    A sweep is >= 2 methods with the same pruner, stop criteria and max_epochs
    (and, where methods.csv has them, the same ``rewind`` and pruner ``spec``),
    equal values in the other threshold columns, and >= 2 distinct values of a
    threshold that one of their stop criteria uses.
    """
    if methods.empty or "method" not in methods:
        return []
    m = methods.copy()
    for c in ("pruner", "stops", "max_epochs", *_STOP_PARAMS.values()):
        if c not in m:
            m[c] = np.nan
    m["_stops"] = m["stops"].map(parse_stops)
    m["_pruner"] = m["pruner"].fillna("").astype(str)
    m["_budget"] = pd.to_numeric(m["max_epochs"], errors="coerce").fillna(-1)
    params = list(_STOP_PARAMS.values())
    for p in params:
        m[p] = pd.to_numeric(m[p], errors="coerce")
    extra = [c for c in ("rewind", "spec") if c in m.columns]
    for c in extra:
        m[f"_{c}"] = m[c].astype(str)
    sweeps = []
    for key, fam in m.groupby(["_pruner", "_stops", "_budget"] + [f"_{c}" for c in extra], sort=True):
        pruner, stops = key[0], key[1]
        if len(fam) < 2:
            continue
        for crit, p in _STOP_PARAMS.items():
            if crit not in stops:
                continue
            others = [q for q in params if q != p]
            keyed = fam.assign(**{f"_k_{q}": fam[q].fillna(-1.0).round(12) for q in others})
            for _, sub in keyed.groupby([f"_k_{q}" for q in others], sort=True):
                sub = sub.dropna(subset=[p])
                if sub[p].nunique() >= 2:
                    sub = sub.sort_values([p, "method"])
                    sweeps.append(EpsilonSweep(pruner, stops, p, tuple(sub["method"].astype(str)),
                                               tuple(float(v) for v in sub[p])))
    return sweeps


def _sweep_color(sw: EpsilonSweep, colors: dict) -> str:
    for m in sw.methods:
        if m in CANONICAL_COLORS:
            return CANONICAL_COLORS[m]
    fallback = {"infoflow_epsilon": "ciap", "gradflow_epsilon": "giap", "accuracy_delta": "earlystop"}
    return CANONICAL_COLORS[fallback[sw.parameter]]


@_figure_fn
def ablation(tables_dir: Path):
    """Final test accuracy and total retraining epochs against epsilon, one line per method family."""
    from matplotlib.lines import Line2D

    methods = _read_methods(tables_dir)
    sweeps = find_epsilon_sweeps(methods)
    if not sweeps:
        detail = ""
        if not methods.empty:
            def f(v):
                return "–" if not np.isfinite(v) else f"{v:g}"
            lines = [f"{'method':<16}{'stops':<20}{'ε info':>8}{'ε grad':>9}{'δ acc':>8}"]
            lines += [f"{str(r.method)[:15]:<16}{'+'.join(parse_stops(r.stops)) or 'budget':<20}"
                      f"{f(r.infoflow_epsilon):>8}{f(r.gradflow_epsilon):>9}{f(r.accuracy_delta):>8}"
                      for r in methods.itertuples()]
            detail = "\n".join(lines[:13] + (["..."] if len(lines) > 13 else []))
        return _message_figure("Epsilon ablation", "no epsilon sweep in this experiment", detail)
    it, _, colors = _iterations(tables_dir)
    if it.empty:
        return _no_data("Epsilon ablation", "iterations.csv")
    it = it.sort_values(_KEYS + ["seed", "iteration"])
    g = it.groupby(_KEYS + ["seed"], sort=False)
    final = g.tail(1)[_KEYS + ["seed", "test_accuracy", "remaining_weights"]].copy()
    total = g["epochs_trained"].sum(min_count=1).reset_index(name="total_epochs")
    per_seed = final.merge(total, on=_KEYS + ["seed"])
    per_seed["acc"] = per_seed["test_accuracy"] * 100
    params = [p for p in _STOP_PARAMS.values() if any(s.parameter == p for s in sweeps)]
    panels = _panels(it)
    nr, nc = len(panels), 2 * len(params)
    fig = _new_figure(max(4.2 * nc, 7.0), 3.0 * nr + 1.2)
    fig.suptitle("Stop-threshold ablation: final test accuracy and total retraining epochs "
                 "(mean over seeds, 95% CI)")
    axes = fig.subplots(nr, nc, squeeze=False)
    handles, seen_baselines = [], set()
    for i_p, p in enumerate(params):
        for sw in (s for s in sweeps if s.parameter == p):
            color = _sweep_color(sw, colors)
            handles.append(Line2D([], [], color=color, marker="o", ms=4, label=sw.label))
            vmap = dict(zip(sw.methods, sw.values))
            base = methods[(methods["pruner"].astype(str) == sw.pruner)
                           & (methods["stops"].map(lambda v: len(parse_stops(v)) == 0))]["method"].astype(str).tolist()
            for r, (ds, arch) in enumerate(panels):
                sub = _sel(per_seed, dataset=ds, arch=arch)
                sub = sub[sub["method"].isin(sw.methods)].assign(eps=lambda d: d["method"].map(vmap))
                for j, col in enumerate(("acc", "total_epochs")):
                    ax = axes[r, 2 * i_p + j]
                    a = mean_ci(sub, "eps", col)
                    if a.empty:
                        continue
                    ax.plot(a["eps"], a["mean"], color=color, marker="o", ms=4)
                    _band(ax, a["eps"], a["lo"], a["hi"], a["n"], color, clip=(0, 100) if j == 0 else (0, None))
                    for b in base:
                        bv = _sel(per_seed, dataset=ds, arch=arch, method=b)[col].dropna()
                        if len(bv):
                            ax.axhline(bv.mean(), color=colors.get(b, "0.5"), ls=":", lw=1.2)
                            if b not in seen_baselines:
                                seen_baselines.add(b)
                                handles.append(Line2D([], [], color=colors.get(b, "0.5"), ls=":",
                                                      label=f"{b} (fixed budget, no early stop)"))
        for r, (ds, arch) in enumerate(panels):
            vals = [v for s in sweeps if s.parameter == p for v in s.values]
            for j, lab in enumerate(("final test accuracy (%)", "total retraining epochs")):
                ax = axes[r, 2 * i_p + j]
                if not _maybe_log(ax, vals, "x") and len(set(vals)) <= 8:
                    ax.set_xticks(sorted(set(vals)))
                ax.set_ylabel(lab)
                ax.set_xlabel(_PARAM_LABELS[p] if r == nr - 1 else "")
                ax.set_title(f"{ds} / {arch} — {'accuracy' if j == 0 else 'epochs'} vs. {_PARAM_LABELS[p]}")
    _legend_below(fig, handles)
    return fig


# ---------------------------------------------------------------------------
# Registry and writer
# ---------------------------------------------------------------------------

FIGURES: dict[str, Callable] = {
    "similarity": similarity,
    "connectivity": connectivity,
    "gradient": gradient,
    "comparison": comparison,
    "accuracy": accuracy,
    "epochs": epochs,
    "cost": cost,
    "ablation": ablation,
}


def make_figure(name: str, tables_dir: Path, out_pdf: Path) -> None:
    """Draw figure ``name`` from the tables in ``tables_dir``; write ``out_pdf`` and its ``.png`` sibling."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known figures: {', '.join(FIGURES)}")
    out_pdf = Path(out_pdf)
    mpl = _mpl()
    with mpl.rc_context(_RC):
        figs = FIGURES[name](Path(tables_dir))
        meta = {"Creator": "infcop", "CreationDate": None}

        def write_pdf(f) -> None:
            from matplotlib.backends.backend_pdf import PdfPages

            with PdfPages(f, metadata=meta) as pdf:
                for f in figs:
                    pdf.savefig(f)

        def write_png(f) -> None:
            # cap the pixel size of very tall pages (similarity with many iterations)
            dpi = min(_PNG_DPI, _PNG_MAX_PX / max(figs[0].get_size_inches()))
            figs[0].savefig(f, format="png", dpi=dpi)

        atomic_write(out_pdf, write_pdf)
        # the PDF pass already solved the constrained layout: keep those positions for the PNG
        figs[0].set_layout_engine("none")
        atomic_write(out_pdf.with_suffix(".png"), write_png)


def main(argv=None) -> int:
    """``python -m infcop.plots NAME TABLES_DIR OUT_PDF``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m infcop.plots", description=main.__doc__)
    ap.add_argument("name", choices=list(FIGURES))
    ap.add_argument("tables_dir", type=Path)
    ap.add_argument("out_pdf", type=Path)
    a = ap.parse_args(argv)
    make_figure(a.name, a.tables_dir, a.out_pdf)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
