"""Stop criteria for retraining. A criterion is a small class registered in STOPS with its parameter spec.
The training loop hands each criterion of the method every epoch's record, epoch 0 (the pruned, rewound
network before any training) included, in order, with the dense reference, and asks whether it `holds`.
Retraining stops at the first epoch from `min_epochs` on where one holds, and always at `max_epochs`;
every criterion's verdict is recorded at every epoch."""
from __future__ import annotations

import math

from .. import InfcopError
from .measures import INFO_MEASURES, MEASURES, SPATIAL, key
from .registry import Param, Registry

STOPS = Registry("stop criterion")


class Criterion:
    """Base class. `needs_flows`: the criterion reads flow measurements (its method is charged flow time
    only then). `mask_window`: > 0 when it reads the would-be masks of the last epochs (the loop then runs
    the method's pruner on the current weights every epoch, and the method is charged for it). `measures`: the flow measure keys it needs recorded. `holds` may keep state: it is called
    once per epoch, in order (a resumed run replays the history first). `value` and `threshold` say what
    it compared, for the tables."""

    needs_flows = False
    mask_window = 0
    verdict = True  # False: the loop's own budget, no verdict column
    form = ""
    measure = ""

    def __init__(self, params: dict, cid: str | None = None):
        self.params = params
        self.name = params["name"]
        self.id = cid or self.name

    @property
    def measures(self) -> set:
        return set()

    def holds(self, record: dict, reference: dict) -> bool:
        raise NotImplementedError

    def value(self, record: dict, reference: dict) -> float:
        return float("nan")

    def threshold(self, record: dict, reference: dict) -> float:
        return float("nan")


@STOPS.register("budget", label="fixed budget")
class Budget(Criterion):
    """Train the whole epoch budget (`max_epochs`): never stops early."""
    verdict = False

    def holds(self, record, reference):
        return False


FORMS = ("epsilon", "recover", "patience")
THRESHOLD_PARAMS = (
    Param("epsilon", "number", default=None, lo=0, lo_open=True, words=("auto",),
          help="stop once the distance is below epsilon; 'auto': below the dense network's noise floor"),
    Param("recover", "number", default=None, lo=0, hi=1, lo_open=True, hi_open=True,
          help="stop once the distance has fallen to this fraction of its epoch-0 value"),
    Param("patience", "integer", default=None, lo=1, help="stop once the distance has not improved for this many epochs"),
    Param("tol", "number", default=0.0, lo=0, help="with patience: an improvement must exceed tol"),
)


def check_threshold(params: dict, key_: str) -> None:
    given = [f for f in FORMS if params.get(f) is not None]
    if len(given) != 1:
        raise InfcopError(f"config key '{key_}': stop criterion '{params['name']}' needs exactly one threshold "
                          f"form of {', '.join(FORMS)} (got {', '.join(given) or 'none'})")
    if params.get("tol") and given[0] != "patience":
        raise InfcopError(f"config key '{key_}.tol': tol only applies with patience")
    measure = params.get("measure", "gradflow")
    if params.get("spatial", "mean") != "mean" and not MEASURES.get(measure).info["spatial"]:
        raise InfcopError(f"config key '{key_}.spatial': measure '{measure}' has no spatial mode (it uses "
                          "positions as samples already, or has none); allowed: mean")
    if params.get("epsilon") == "auto" and not MEASURES.get(measure).info["noise_floor"]:
        raise InfcopError(f"config key '{key_}.epsilon': 'auto' needs a noise floor, and measure '{measure}' has "
                          "no noise floor (a network's CKA to itself is 1 on any probe); use recover or patience")


class FlowCriterion(Criterion):
    """A flow measure's distance to the dense network, against one threshold form: `epsilon` (absolute,
    the study's), `epsilon: auto` (the dense network's own noise floor for that measure), `recover: a`
    (a x the distance at epoch 0) or `patience: P` (no improvement beyond `tol` for P epochs).

    `recover` and `patience` compare the distance with itself, so on noise they fire anyway: they are
    *armed* only once the distance has been above the measure's noise floor in this iteration (epoch 0
    included); until then they do not hold and the method's other criteria or its budget decide. A
    measure without a noise floor (CKA) arms them at once."""

    needs_flows = True
    RELATIVE = ("recover", "patience")

    def __init__(self, params, cid=None):
        super().__init__(params, cid)
        self.measure = params.get("measure", "gradflow")
        self.key = key(self.measure, params.get("spatial", "mean"))
        self.form = next(f for f in FORMS if params.get(f) is not None)
        if self.form == "epsilon" and params["epsilon"] == "auto":
            self.form = "auto"
        self.start = self.best = None
        self.since = 0
        self.armed = self.form not in self.RELATIVE

    def floor(self, reference) -> float | None:
        value = reference.get("noise_floor", {}).get(self.key)
        return None if value is None else float(value)

    @property
    def measures(self):
        return {self.key}

    def value(self, record, reference):
        return float(record.get("distances", {}).get(self.key, float("nan")))

    def threshold(self, record, reference):
        if self.form == "epsilon":
            return float(self.params["epsilon"])
        if self.form == "auto":
            floors = reference.get("noise_floor", {})
            if self.key not in floors:
                raise InfcopError(f"stop criterion '{self.id}': the dense metrics hold no noise floor for "
                                  f"'{self.key}'; rerun the dense stage with this version of infcop")
            return float(floors[self.key])
        if self.form == "recover":
            return float(self.params["recover"]) * self.start if self.start is not None else float("nan")
        return float("nan")

    def holds(self, record, reference):
        d = self.value(record, reference)
        if self.start is None:
            self.start = d  # epoch 0: the disruption retraining is meant to repair
        if not self.armed:
            floor = self.floor(reference)
            self.armed = floor is None or d > floor  # something to recover beyond the probe's noise
        if self.form == "patience":
            improved = self.best is None or d < self.best - float(self.params["tol"])
            self.since = 0 if improved else self.since + 1
            self.best = d if self.best is None else min(self.best, d)
            return self.armed and self.since >= int(self.params["patience"])
        if not self.armed:
            return False
        t = self.threshold(record, reference)
        if self.form == "epsilon":
            return d < t
        return d <= t


@STOPS.register("infoflow", params=[*THRESHOLD_PARAMS,
                                    Param("measure", "choice", "signed_mean", choices=INFO_MEASURES),
                                    Param("spatial", "choice", "mean", choices=SPATIAL)],
                check=check_threshold, label="information flow", measure_param="measure")
class InfoFlow(FlowCriterion):
    """Information flow (a connectivity or representation measure) consistent with the dense network's."""


@STOPS.register("gradflow", params=THRESHOLD_PARAMS, check=check_threshold, label="gradient flow")
class GradFlow(FlowCriterion):
    """Gradient flow (per-layer mean |dL/dW|) consistent with the dense network's."""


@STOPS.register("accuracy", params=[Param("delta", "number", lo=0, hi=1, help="allowed shortfall")],
                label="validation accuracy")
class Accuracy(Criterion):
    """Validation accuracy back to within delta of the dense network's."""
    measure = "val_accuracy"
    form = "delta"

    def value(self, record, reference):
        return float(record["val_accuracy"])

    def threshold(self, record, reference):
        return float(reference["val_accuracy"]) - float(self.params["delta"])

    def holds(self, record, reference):
        return self.value(record, reference) >= self.threshold(record, reference)


@STOPS.register("patience", params=[
    Param("metric", "choice", "val_accuracy", choices=("val_accuracy", "val_loss"),
          help="what must stop improving: validation accuracy (higher is better) or loss (lower is better)"),
    Param("patience", "integer", default=3, lo=1, help="stop after this many epochs without improvement"),
    Param("tol", "number", default=0.0, lo=0, help="an improvement must exceed tol"),
    Param("restore_best", "bool", default=True, help="end with the weights of the best epoch, not the last")],
    label="early stopping (patience)")
class Patience(Criterion):
    """Early stopping as practised: stop once the validation accuracy (or loss) has not improved by more
    than `tol` for `patience` epochs, and (by default) end with the best epoch's weights. Epoch 0, the pruned
    network before retraining, is the first candidate. The retraining is charged up to the epoch where it
    stopped, not the restored one."""
    form = "patience"

    def __init__(self, params, cid=None):
        super().__init__(params, cid)
        self.measure = params["metric"]
        self.best = None
        self.best_epoch = None
        self.since = 0

    @property
    def restores_best(self) -> str | None:
        """The metric whose best epoch the retraining ends with (None: the last epoch)."""
        return self.params["metric"] if self.params["restore_best"] else None

    def value(self, record, reference):
        return float(record.get(self.params["metric"], float("nan")))

    def threshold(self, record, reference):
        return float(self.params["patience"])

    def holds(self, record, reference):
        v = self.value(record, reference)
        tol = float(self.params["tol"])
        higher = self.params["metric"] == "val_accuracy"
        improved = self.best is None or (v > self.best + tol if higher else v < self.best - tol)
        if improved:
            self.best, self.best_epoch, self.since = v, record["epoch"], 0
        else:
            self.since += 1
        return self.since >= int(self.params["patience"])


def reads_noise_floor(c: Criterion) -> bool:
    """Whether a criterion reads the dense network's noise floor: `epsilon: auto` compares with it, and
    `recover` / `patience` on a flow measure that has one are armed by it."""
    if getattr(c, "form", "") == "auto":
        return True
    return bool(c.needs_flows and c.form in FlowCriterion.RELATIVE and MEASURES.get(c.measure).info["noise_floor"])


def restore_metric(criteria) -> str | None:
    """The metric whose best epoch a retraining must end with (a patience criterion's), or None."""
    return next((c.restores_best for c in criteria if getattr(c, "restores_best", None)), None)


def needs_val_loss(criteria) -> bool:
    return any(c.measure == "val_loss" for c in criteria)


@STOPS.register("mask_stable", params=[
    Param("delta", "number", default=0.1, lo=0, hi=1, lo_open=True,
          help="stop once the would-be mask differs from each of the last `window` epochs' by at most delta"),
    Param("window", "integer", default=4, lo=1, help="how many previous epochs' would-be masks it must match"),
    Param("normalise", "choice", default="all", choices=("all", "removed"),
          help="all: Hamming distance over all mask entries (Early-Bird's); removed: over the weights the two "
               "masks would remove")],
    label="mask stability")
class MaskStable(Criterion):
    """Early-Bird's signal (You et al., ICLR 2020; GATECH-EIC/Early-Bird-Tickets `EarlyBird`): each epoch the
    method's pruner is applied to the current weights; once that would-be mask's distance to each of the
    last `window` epochs' would-be masks is at most `delta`, the mask has settled and retraining stops.
    Early-Bird's defaults: delta 0.1, window 4 (it keeps 5 masks). Needs no probe pass.

    `normalise: all` (default, Early-Bird's `cal_dist`): the Hamming distance divided by all mask entries of
    the prunable layers, weights pruned in earlier iterations included (they agree in every mask, so the
    distance shrinks with sparsity, as it would in Early-Bird's code). `normalise: removed`: |A xor B| /
    (|A| + |B|) over the weights each would remove (A, B), 0 when they remove the same weights, 1 when
    disjoint, and stops only below delta -- 2-10 times stricter at the same delta in later iterations."""
    measure = "mask_distance"
    form = "delta"

    @property
    def mask_window(self) -> int:
        return int(self.params["window"])

    def value(self, record, reference):
        key = "mask_distances" if self.params.get("normalise", "all") == "all" else "mask_distances_removed"
        recent = (record.get(key) or [])[:self.mask_window]
        return max(recent) if len(recent) == self.mask_window else float("nan")

    def threshold(self, record, reference):
        return float(self.params["delta"])

    def holds(self, record, reference):
        v = self.value(record, reference)
        if math.isnan(v):
            return False
        # Early-Bird fails a window only on a distance > delta; the `removed` form kept its strict `<`
        return v <= self.threshold(record, reference) if self.params.get("normalise", "all") == "all" \
            else v < self.threshold(record, reference)


def normalise_stops(stops, key_: str = "stop") -> list[dict]:
    """Accept ['budget', {'name': 'infoflow', 'epsilon': 0.1}, ...]; check names and parameters, fill
    defaults. An empty list means the budget alone."""
    if isinstance(stops, (str, dict)):
        stops = [stops]
    if not isinstance(stops, list):
        raise InfcopError(f"config key '{key_}': bad value {stops!r}; allowed: a list of stop criteria "
                          f"({', '.join(STOPS.names())})")
    return [STOPS.resolve(f"{key_}.{i}", s) for i, s in enumerate(stops or ["budget"])]


def criteria_of(stops: list[dict]) -> list[Criterion]:
    """Fresh criterion objects for a method's (normalised) stop list; ids are unique within the method."""
    seen: dict[str, int] = {}
    out = []
    for s in stops:
        seen[s["name"]] = seen.get(s["name"], 0) + 1
        cid = s["name"] if seen[s["name"]] == 1 else f"{s['name']}_{seen[s['name']]}"
        out.append(STOPS.get(s["name"]).obj(s, cid))
    return out


def needs_flows(stops: list[dict]) -> bool:
    return any(c.needs_flows for c in criteria_of(stops))


def mask_window(criteria: list[Criterion]) -> int:
    """How many previous epochs' would-be masks the criteria read (0: none, the loop computes none)."""
    return max((c.mask_window for c in criteria), default=0)


def _number(v) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def decide(criteria: list[Criterion], epoch: int, max_epochs: int, min_epochs: int, record: dict,
           reference: dict) -> tuple[bool, str]:
    """Ask every criterion (in order; each exactly once per epoch) and record each verdict in
    `record['criteria']`. Returns (stop, reason): reason lists every criterion that held at the stopping
    epoch ('infoflow+accuracy'), 'budget' when only the budget ended it, '' while training goes on."""
    held, verdicts = [], {}
    for c in criteria:
        h = bool(c.holds(record, reference))
        if c.verdict:
            value, threshold = c.value(record, reference), c.threshold(record, reference)
            verdicts[c.id] = {"name": c.name, "measure": c.measure, "form": c.form, "value": _number(value),
                              "threshold": _number(threshold), "holds": h,
                              "status": "holds" if h else ("not armed" if not getattr(c, "armed", True)
                                                           else "does not hold")}
        if h:
            held.append(c.id)
    record["criteria"] = verdicts
    if epoch >= min_epochs and held:
        return True, "+".join(held)
    if epoch >= max_epochs:
        return True, "budget"
    return False, ""
