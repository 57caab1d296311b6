"""The registries and what reads them: parameter specs, the generated JSON schema, the layout."""
import pytest

from conftest import ROOT
from infcop import InfcopError
from infcop.science.pruners import PRUNERS
from infcop.science.registry import Param, Registry
from infcop.science.stopping import STOPS


def test_committed_schema_is_the_one_the_registries_generate():
    from infcop.experiments.schema import schema_yaml

    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text() == schema_yaml()


def test_schema_enums_and_keys_equal_the_registries():
    from infcop.science.data import DATASETS
    from infcop.experiments.schema import config_schema
    from infcop.experiments.settings_spec import METHOD_PARAMS, SETTINGS

    s = config_schema()
    assert s["properties"]["experiment"]["properties"]["datasets"]["items"]["enum"] == DATASETS.names()
    assert s["definitions"]["stop"]["oneOf"][0]["enum"] == STOPS.names()
    pruners = s["definitions"]["method"]["properties"]["pruner"]["oneOf"]
    assert [p["properties"]["name"]["const"] for p in pruners] == PRUNERS.names()
    for p, entry in zip(pruners, PRUNERS):
        assert list(p["properties"]) == ["name", *entry.param_names()]
    for sec, params in SETTINGS.items():
        assert list(s["properties"][sec]["properties"]) == [p.name for p in params]
    assert set(s["definitions"]["method"]["properties"]) == {"pruner", "stop", *(p.name for p in METHOD_PARAMS)}


def test_param_specs_say_what_is_allowed():
    rate = Param("rate", "number", lo=0, hi=1, lo_open=True, hi_open=True)
    assert rate.allowed() == "a number in (0, 1)"
    assert [rate.valid(v) for v in (0.5, 0, 1, True, "0.5", float("nan"))] == [True] + [False] * 5
    assert Param("k", "integer", lo=1).allowed() == "an integer >= 1"
    assert not Param("k", "integer", lo=1).valid(2.0)
    with pytest.raises(InfcopError, match=r"config key 'x.rate': rate must be a number in \(0, 1\), got 1.5"):
        rate.check("x.rate", 1.5)
    assert rate.json_schema() == {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}


def test_registry_resolves_specs_with_defaults_and_names_bad_keys():
    reg = Registry("widget")
    reg.add("w", object(), params=[Param("size", "integer", lo=1), Param("fast", "bool", default=False)])
    assert reg.resolve("m.widget", {"name": "w", "size": 2}) == {"name": "w", "size": 2, "fast": False}
    with pytest.raises(InfcopError, match="unknown widget 'v'; known: w"):
        reg.resolve("m.widget", {"name": "v"})
    with pytest.raises(InfcopError, match="'m.widget.sise' is unknown .* allowed for widget 'w': name, size, fast"):
        reg.resolve("m.widget", {"name": "w", "sise": 2})
    with pytest.raises(InfcopError, match="widget 'w' needs 'size'"):
        reg.resolve("m.widget", "w")
    with pytest.raises(ValueError):
        reg.add("x", object(), params=[Param("name", "string")])


def test_layout_is_the_one_place_for_result_paths():
    from infcop.running import layout as L

    lay = L.Layout("res")
    assert lay.iteration("digits", "small_cnn", 0, "lth", 2) == "res/digits/small_cnn/seed0/lth/iter2"
    assert lay.previous("digits", "small_cnn", 0, "lth", 1) == "res/digits/small_cnn/seed0/dense"
    assert lay.previous("digits", "small_cnn", 0, "lth", 3) == "res/digits/small_cnn/seed0/lth/iter2"
    assert lay.log("{dataset}", "{arch}", "{seed}", "iteration", "{method}", "{k}") == \
        "res/logs/{dataset}/{arch}/seed{seed}/{method}/iter{k}.log"
    assert lay.runs({"datasets": ["d"], "archs": ["a"], "seeds": [0, 1], "methods": ["m"]}) == \
        ["res/d/a/seed0/m", "res/d/a/seed1/m"]
