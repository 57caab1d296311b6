"""Information Consistent Pruning (Inf-CoP): the science, importable without Snakemake."""

__version__ = "0.1.0"


class InfcopError(Exception):
    """A problem with the user's input or files: reported as one clear line, never a traceback."""


def load_ticket(path, device="cpu"):
    """Load an exported sparse network (``ticket.pt``): returns ``(model, masks, meta)``."""
    from .running.checkpoints import load_ticket as _load

    return _load(path, device=device)
