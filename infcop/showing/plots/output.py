"""Writing figures: every page into one PDF, chosen pages into PNGs (stacked), each file atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .style import PNG_DPI, PNG_MAX_PX, RC, mpl


def _dpi(fig) -> float:
    # cap the pixel size of very tall pages (similarity with many iterations)
    return min(PNG_DPI, PNG_MAX_PX / max(fig.get_size_inches()))


def _stacked_png(figs: list):
    """The pages rendered one below the other (white where a page is narrower) -> a writer for atomic_write."""
    import matplotlib.image as mimage

    images = []
    for fig in figs:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_dpi(fig))
        buf.seek(0)
        images.append(mimage.imread(buf, format="png"))
    width = max(im.shape[1] for im in images)
    rows = [np.pad(im, ((0, 0), (0, width - im.shape[1]), (0, 0)), constant_values=1.0) for im in images]
    stacked = np.concatenate(rows, axis=0)
    return lambda f: mimage.imsave(f, stacked, format="png")


def write_figure(figs: list, out_pdf: Path, pngs: dict) -> None:
    """Write all ``figs`` as the pages of ``out_pdf``; for each ``png path -> page indices``, those pages."""
    from ...running.checkpoints import atomic_write

    meta = {"Creator": "infcop", "CreationDate": None}
    with mpl().rc_context(RC):
        def write_pdf(f) -> None:
            from matplotlib.backends.backend_pdf import PdfPages

            with PdfPages(f, metadata=meta) as pdf:
                for fig in figs:
                    pdf.savefig(fig)

        atomic_write(out_pdf, write_pdf)
        for fig in figs:  # the PDF pass already solved the constrained layout: keep those positions
            fig.set_layout_engine("none")
        for path, pages in pngs.items():
            chosen = [figs[i] for i in pages]
            if len(chosen) == 1:
                fig = chosen[0]
                atomic_write(Path(path), lambda f, fig=fig: fig.savefig(f, format="png", dpi=_dpi(fig)))
            else:
                atomic_write(Path(path), _stacked_png(chosen))
