"""Shared look of every figure: method colours and order, the rc style, figure and legend helpers.

matplotlib is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import colorsys
import functools
import math
import re
from pathlib import Path
from typing import Callable

import numpy as np

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

# Markers: the study's methods fixed, the others in (natural) name order, so identical curves of
# different methods stay distinguishable.
CANONICAL_MARKERS = {"lth": "o", "sap": "s", "ciap": "^", "giap": "v", "earlystop": "D"}
_EXTRA_MARKERS = ("P", "X", "<", ">", "p", "h", "*", "d", "H", "8")

RC = {
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
PNG_DPI = 150
PNG_MAX_PX = 4500
BAND_ALPHA = 0.18
STOP_COLOR = "#C0392B"


def method_markers(methods) -> dict[str, str]:
    """Map each method to a marker: the study's methods fixed, the others in natural name order."""
    names = {str(m) for m in methods if not isnan(m)}
    markers = {m: CANONICAL_MARKERS[m] for m in names if m in CANONICAL_MARKERS}
    for i, m in enumerate(sorted(names - set(markers), key=natural_key)):
        markers[m] = _EXTRA_MARKERS[i % len(_EXTRA_MARKERS)]
    return markers


def isnan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def natural_key(name: str):
    """'sap_fixed10' after 'sap_fixed5': digit runs compare as numbers."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(name)) if t]


def method_order(methods) -> list[str]:
    """Methods in display order: the study's methods first (fixed order), then the rest in natural order."""
    names = {str(m) for m in methods if not isnan(m)}
    canon = [m for m in CANONICAL_METHODS if m in names]
    return canon + sorted(names - set(canon), key=natural_key)


def method_colors(methods) -> dict[str, str]:
    """Map each method to a hex colour.

    lth/sap/ciap/giap/earlystop always get ``CANONICAL_COLORS``; every other
    method gets the next extra colour in sorted-name order, so the mapping
    depends only on the set of methods and is identical across figures.
    """
    names = {str(m) for m in methods if not isnan(m)}
    colors = {m: CANONICAL_COLORS[m] for m in names if m in CANONICAL_COLORS}
    others = sorted(names - set(colors), key=natural_key)
    for i, m in enumerate(others):
        if i < len(_EXTRA_COLORS):
            colors[m] = _EXTRA_COLORS[i]
        else:  # deterministic golden-ratio hues beyond the palette
            h = (0.13 + 0.618033988749895 * i) % 1.0
            r, g, b = colorsys.hls_to_rgb(h, 0.45, 0.65)
            colors[m] = "#{:02X}{:02X}{:02X}".format(int(r * 255), int(g * 255), int(b * 255))
    return colors


def mpl():
    """matplotlib with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


def figure_fn(fn: Callable) -> Callable:
    """Run a figure function under the package's rc style; accept str or Path; always return a list."""

    @functools.wraps(fn)
    def wrapper(tables_dir) -> list:
        with mpl().rc_context(RC):
            figs = fn(Path(tables_dir))
        return figs if isinstance(figs, list) else [figs]

    return wrapper


def new_figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def message_figure(title: str, message: str, detail: str = ""):
    fig = new_figure(7.0, 3.2)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.62, message, ha="center", va="center", fontsize=13, transform=ax.transAxes)
    if detail:
        ax.text(0.5, 0.42, detail, ha="center", va="top", fontsize=7.5, color="0.3",
                transform=ax.transAxes, family="monospace", multialignment="left")
    fig.suptitle(title)
    return fig


def no_data(title: str, table: str):
    return message_figure(title, "no data", f"{table} has no rows for this figure")


def panel_title(ds: str, arch: str) -> str:
    return f"{ds} / {arch}"


def method_handles(order, colors, markers=None, labels=None):
    """Legend handles: one line with its marker per method (``labels`` may rename them)."""
    from matplotlib.lines import Line2D

    markers = markers or method_markers(order)
    labels = labels or {}
    return [Line2D([], [], color=colors[m], marker=markers.get(m, "o"), ms=4, label=labels.get(m, m))
            for m in order]


def legend_below(fig, handles, ncol=None):
    """One legend below the panels (needs the figure's constrained layout), in as many columns as fit."""
    if not handles:
        return
    if ncol is None:
        width = [0.55 + 0.075 * len(str(h.get_label())) for h in handles]  # inches at 7 pt, with room
        ncol = 1
        for nc in range(len(handles), 1, -1):
            # matplotlib splits the handles into ncol columns as numpy.array_split does
            sizes = [len(c) for c in np.array_split(np.arange(len(handles)), nc)]
            starts = np.cumsum([0] + sizes[:-1])
            if sum(max(width[a:a + n]) for a, n in zip(starts, sizes)) <= fig.get_figwidth() * 0.95:
                ncol = nc
                break
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)
