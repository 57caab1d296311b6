"""Stop criteria for retraining. A criterion is a small class registered in STOPS with its parameter spec;
after every epoch the training loop hands each criterion of the method the epoch's record (validation
accuracy, flow distances, ...) and the dense reference, and asks whether it `holds`. Retraining stops at
the first epoch where one holds (never before min_epochs) and always at the epoch budget."""
from __future__ import annotations

from . import InfcopError
from .registry import Param, Registry

STOPS = Registry("stop criterion")


class Criterion:
    """Base class. Subclasses set `needs_flows` when they read flow measurements (a method is charged flow
    time only then) and implement `holds`; `value` and `threshold` say what was compared (for tables)."""

    needs_flows = False

    def __init__(self, params: dict, cid: str | None = None):
        self.params = params
        self.name = params["name"]
        self.id = cid or self.name

    def holds(self, record: dict, reference: dict) -> bool:
        raise NotImplementedError

    def value(self, record: dict, reference: dict) -> float:
        return float("nan")

    def threshold(self, record: dict, reference: dict) -> float:
        return float("nan")


@STOPS.register("budget", label="fixed budget")
class Budget(Criterion):
    """Train the whole epoch budget (`max_epochs`): never stops early."""

    def holds(self, record, reference):
        return False


class _Below(Criterion):
    """Holds when a distance recorded by the loop is below epsilon."""
    column = ""
    needs_flows = True

    def value(self, record, reference):
        return float(record.get(self.column, float("nan")))

    def threshold(self, record, reference):
        return float(self.params["epsilon"])

    def holds(self, record, reference):
        return self.value(record, reference) < self.threshold(record, reference)


EPSILON = Param("epsilon", "number", lo=0, lo_open=True, help="stop once the distance to dense is below it")


@STOPS.register("infoflow", params=[EPSILON], label="information flow", column="info_distance")
class InfoFlow(_Below):
    """Information flow (connectivity of consecutive layers) within epsilon of the dense network's."""
    column = "info_distance"


@STOPS.register("gradflow", params=[EPSILON], label="gradient flow", column="grad_distance")
class GradFlow(_Below):
    """Gradient flow (per-layer mean |dL/dW|) within epsilon of the dense network's."""
    column = "grad_distance"


@STOPS.register("accuracy", params=[Param("delta", "number", lo=0, hi=1, help="allowed shortfall")],
                label="validation accuracy")
class Accuracy(Criterion):
    """Validation accuracy back to within delta of the dense network's."""

    def value(self, record, reference):
        return float(record["val_accuracy"])

    def threshold(self, record, reference):
        return float(reference["val_accuracy"]) - float(self.params["delta"])

    def holds(self, record, reference):
        return self.value(record, reference) >= self.threshold(record, reference)


def normalise_stops(stops, key: str = "stop") -> list[dict]:
    """Accept ['budget', {'name': 'infoflow', 'epsilon': 0.1}, ...]; check names and parameters, fill
    defaults. An empty list means the budget alone."""
    if isinstance(stops, (str, dict)):
        stops = [stops]
    if not isinstance(stops, list):
        raise InfcopError(f"config key '{key}': bad value {stops!r}; allowed: a list of stop criteria "
                          f"({', '.join(STOPS.names())})")
    out = []
    for i, s in enumerate(stops or ["budget"]):
        out.append(STOPS.resolve(f"{key}.{i}", s))
    return out


def criteria_of(stops: list[dict]) -> list[Criterion]:
    """Criterion objects for a method's (normalised) stop list; ids are unique within the method."""
    seen: dict[str, int] = {}
    out = []
    for s in stops:
        seen[s["name"]] = seen.get(s["name"], 0) + 1
        cid = s["name"] if seen[s["name"]] == 1 else f"{s['name']}_{seen[s['name']]}"
        out.append(STOPS.get(s["name"]).obj(s, cid))
    return out


def needs_flows(stops: list[dict]) -> bool:
    return any(c.needs_flows for c in criteria_of(stops))


def decide(criteria: list[Criterion], epoch: int, max_epochs: int, min_epochs: int, record: dict,
           reference: dict) -> tuple[bool, str]:
    """(stop, reason): reason is the first criterion that held, 'budget' at max_epochs, '' otherwise."""
    if epoch >= min_epochs:
        for c in criteria:
            if c.holds(record, reference):
                return True, c.id
    if epoch >= max_epochs:
        return True, "budget"
    return False, ""
