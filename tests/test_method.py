"""A method resolved once (infcop.experiments.method): checked, defaults from the training settings, frozen."""
import dataclasses

import pytest

from infcop import InfcopError
from infcop.experiments.method import resolve_method, thaw

TRAINING = {"max_epochs": 10, "min_epochs": 0}
PRESET = {"pruner": {"name": "magnitude", "rate": 0.2}, "stop": [{"name": "accuracy", "delta": 0.0}], "rewind": {"epoch": 2},
          "schedule": {"name": "linear", "warmup": 0.1}, "lr": 0.01, "anneal_on_stop": 2, "min_epochs": 1}


def test_a_method_holds_every_field_of_its_preset_with_the_defaults_filled_in():
    m = resolve_method("m", PRESET, TRAINING)
    assert m.pruner["name"] == "magnitude" and m.pruner["rate"] == 0.2 and "scope" in m.pruner  # defaults in
    assert (m.max_epochs, m.min_epochs, m.iterations) == (10, 1, None)  # the budget from training, min its own
    assert m.recipe.rewind_epoch == 2 and m.recipe.lr == 0.01 and thaw(m.recipe.anneal) == {"epochs": 2}
    assert thaw(m.recipe.schedule)["name"] == "linear" and m.recipe.optimizer is None and not m.gradual
    assert [s["name"] for s in m.stop] == ["accuracy"] and m.stop[0]["delta"] == 0.0
    assert thaw(m.preset)["pruner"] == thaw(m.pruner)  # what metrics.json records and the stage keys hold


def test_a_method_cannot_be_changed_after_it_is_resolved():
    m = resolve_method("m", PRESET, TRAINING)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.max_epochs = 3
    with pytest.raises(TypeError):
        m.pruner["rate"] = 0.5
    with pytest.raises(TypeError):
        m.recipe.rewind["epoch"] = 0
    with pytest.raises(AttributeError):
        m.stop.append({"name": "accuracy"})
    copy = thaw(m.pruner)
    copy["rate"] = 0.5  # a thawed copy is the caller's own
    assert m.pruner["rate"] == 0.2


def test_the_preset_is_checked_at_the_boundary():
    with pytest.raises(InfcopError, match="'allr' only with rewind: none"):
        resolve_method("m", {**PRESET, "lr": "allr"}, TRAINING)
