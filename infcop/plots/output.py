"""Writing figures: every page into one PDF, chosen pages into PNGs, each file atomically."""

from __future__ import annotations

from pathlib import Path

from .style import PNG_DPI, PNG_MAX_PX, RC, mpl


def write_figure(figs: list, out_pdf: Path, pngs: dict) -> None:
    """Write all ``figs`` as the pages of ``out_pdf``; for each ``png path -> page index``, that page."""
    from ..checkpoints import atomic_write

    meta = {"Creator": "infcop", "CreationDate": None}
    with mpl().rc_context(RC):
        def write_pdf(f) -> None:
            from matplotlib.backends.backend_pdf import PdfPages

            with PdfPages(f, metadata=meta) as pdf:
                for fig in figs:
                    pdf.savefig(fig)

        atomic_write(out_pdf, write_pdf)
        for path, page in pngs.items():
            fig = figs[page]
            # the PDF pass already solved the constrained layout: keep those positions for the PNG
            fig.set_layout_engine("none")
            # cap the pixel size of very tall pages (similarity with many iterations)
            dpi = min(PNG_DPI, PNG_MAX_PX / max(fig.get_size_inches()))
            atomic_write(Path(path), lambda f, fig=fig, dpi=dpi: fig.savefig(f, format="png", dpi=dpi))
