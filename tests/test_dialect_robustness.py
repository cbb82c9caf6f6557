"""The three dialect readers never raise on any value of any known key: bad values end in cfg.invalid,
unknown keys in cfg.unknown_keys (property-based, bounded for CI time)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_compat.config.dialects import derrian_argstore, derrian_toml, kohya_gui
from lora_compat.config.document import Document
from lora_compat.resources import load_schema

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "0", "1", "0.5", "1e-4", "abc", "True", "False", "none", "512,512", "\"a=1\" b=2",
                     "--max_grad_norm=0 --flag", "LyCORIS/LoKr", "Multires", "sdpa", "${replace}"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.sampled_from(["a", "algo", "unit"]),
                                                                           SCALARS, max_size=3))


def _keys(schema_name: str) -> list[str]:
    return sorted(load_schema(schema_name)["properties"])


def _doc(data, fmt="json") -> Document:
    return Document(path="fuzz." + fmt, text=json.dumps(data, default=str), fmt=fmt, data=data)


def _check(cfg) -> None:
    from lora_compat.config.notes import NOTE_CODES

    for s in cfg.options.values():
        assert s.prov.kind in ("kept", "renamed", "converted", "derived", "default", "frontend-quirk")
    assert all(n.code in NOTE_CODES for n in cfg.notes)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([*_keys("kohya-gui.schema.json"), "zzz_unknown"]), VALUES, min_size=1,
                       max_size=25))
def test_kohya_gui_never_raises(data):
    data.setdefault("max_resolution", "512,512")
    _check(kohya_gui.read(_doc(data)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([*_keys("derrian-argstore.schema.json"), "zzz_unknown"]), VALUES, min_size=1,
                       max_size=25))
def test_derrian_argstore_never_raises(data):
    data.setdefault("base_model", "m.safetensors")
    _check(derrian_argstore.read(_doc(data)))


SECTION_KEYS = {sec: sorted(p.get("properties", {}).get("args", {}).get("properties", {}))
                for sec, p in load_schema("derrian-toml.schema.json")["properties"].items() if sec.endswith("_args")}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SECTION_KEYS)), st.data())
def test_derrian_toml_never_raises(section, data):
    keys = SECTION_KEYS[section] or ["x"]
    args = data.draw(st.dictionaries(st.sampled_from(keys), VALUES, max_size=8))
    subsets = data.draw(st.lists(st.dictionaries(st.sampled_from(["image_dir", "num_repeats", "name", "random_crop",
                                                                  "keep_tokens", "face_crop_aug_range"]),
                                                 VALUES, max_size=4), max_size=2))
    doc = {section: {"args": args}, "subsets": subsets,
           "general_args": {"args": {"pretrained_model_name_or_path": "m"}}}
    _check(derrian_toml.read(_doc(doc, "toml")))
