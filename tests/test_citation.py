"""CITATION.cff is valid Citation File Format 1.2.0 and says what it should; LICENSE is MIT.

tests/schemas/citation-file-format-1.2.0.json is the official CFF 1.2.0 JSON schema
(https://citation-file-format.github.io/1.2.0/schema.json, CC-BY-4.0), as bundled in the `cffconvert` package
2.0.0; `cffconvert --validate` checks the same schema. Validated here with jsonschema, a dependency of infcop.
"""
import json

import jsonschema
import yaml

from workflow_helpers import ROOT

SCHEMA = ROOT / "tests" / "schemas" / "citation-file-format-1.2.0.json"


def _cff() -> dict:
    # CFF is YAML 1.2; dates and versions are strings there, so load without YAML 1.1's implicit timestamps
    return yaml.load((ROOT / "CITATION.cff").read_text(), Loader=yaml.BaseLoader)


def test_citation_file_is_valid_cff_1_2_0():
    schema = json.loads(SCHEMA.read_text())
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(cff), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    assert _cff()["cff-version"] == "1.2.0"


def test_citation_names_the_software_and_the_study():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (cff["title"], cff["type"], cff["license"]) == ("infcop", "software", "MIT")
    assert cff["authors"] == [{"name": "The infcop authors"}]
    import infcop

    assert str(cff["version"]) == infcop.__version__
    (study,) = cff["references"]
    assert study["type"] == "article" and study["year"] == 2025
    assert study["title"] == "Information Consistent Pruning: How to Efficiently Search for Sparse Networks?"
    assert [(a["family-names"], a["given-names"]) for a in study["authors"]] == [
        ("Gharatappeh", "Saeed"), ("Sekeh", "Salimeh Yasaei")]
    assert study["url"] == "https://arxiv.org/abs/2501.15592"
    assert {"type": "url", "value": "https://arxiv.org/abs/2501.15592"}.items() <= study["identifiers"][0].items()


def test_license_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) 2026 The infcop authors" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\"" in text
