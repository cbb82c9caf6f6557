"""The three dialect schemas: valid Draft 2020-12, every key linked to a canonical option (or marked
front-end-only with a reason), canonical names real, and every corpus file of the dialect valid as written."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from lora_compat.config import options
from lora_compat.config.detect import detect_document
from lora_compat.config.loaders import load_document
from lora_compat.resources import load_schema

from shared_data import corpus_files, requires_corpus

SCHEMAS = {"kohya-gui": "kohya-gui.schema.json", "derrian-argstore": "derrian-argstore.schema.json",
           "derrian-toml": "derrian-toml.schema.json"}
# canonical targets that are not sd-scripts options themselves but are assembled by the reader
ASSEMBLED = {"network_args", "network_module", "sdxl"}


def _leaf_props(node, path=()):
    for key, sub in (node.get("properties") or {}).items():
        if "x-canonical" in sub:
            yield (*path, key), sub
        yield from _leaf_props(sub, (*path, key))
        if isinstance(sub.get("items"), dict):
            yield from _leaf_props(sub["items"], (*path, key))


@pytest.mark.parametrize("dialect", sorted(SCHEMAS))
def test_schema_is_valid_and_linked(dialect):
    schema = load_schema(SCHEMAS[dialect])
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://lora-compat.dev/schemas/{SCHEMAS[dialect]}"
    leaves = list(_leaf_props(schema))
    assert len(leaves) > 60
    for path, prop in leaves:
        canon = prop["x-canonical"]
        assert prop.get("description"), path
        assert prop.get("x-eras"), path
        if canon is None:
            assert prop.get("x-frontend-only") or prop.get("x-conversion"), path   # additional_parameters
        else:
            ok = options.is_option(canon) or options.is_dataset_param(canon) or canon in ASSEMBLED
            assert ok, (path, canon)


def test_explain_names_per_dialect():
    names = options.names_in_dialects("network_dim")
    assert "net_dim" in names["derrian-argstore"]
    assert "network_args.args.network_dim" in names["derrian-toml"]
    assert "max_resolution" in options.names_in_dialects("resolution")["kohya-gui"]
    assert "warmup_lr_ratio" in options.names_in_dialects("lr_warmup_steps")["derrian-argstore"]


@requires_corpus
def test_corpus_files_valid_against_their_dialect_schema():
    validators = {d: Draft202012Validator(load_schema(f)) for d, f in SCHEMAS.items()}
    checked = 0
    for path in corpus_files():
        try:
            doc = load_document(str(path))
        except Exception:
            continue
        det = detect_document(doc)
        if det.dialect in validators:
            errors = [e.message for e in validators[det.dialect].iter_errors(doc.data)]
            assert not errors, (path.name, errors[:3])
            checked += 1
    assert checked > 150
