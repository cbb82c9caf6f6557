"""Property tests of key positions: every key of generated JSON/TOML documents is found where it is written."""

from __future__ import annotations

import json

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_compat.config.document import join_key
from lora_compat.config.loaders import json_positions, toml_positions

KEYS = st.text(alphabet="abcxyz_-. é\"\\", min_size=1, max_size=6)
SCALARS = st.one_of(st.integers(), st.booleans(), st.text(alphabet="ab{}[],:\"' \n#=", max_size=6),
                    st.floats(allow_nan=False, allow_infinity=False))
DOCS = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                    st.dictionaries(KEYS, kids, max_size=3)), max_leaves=12)


def key_paths(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            path = join_key(prefix, k)
            yield path, k
            yield from key_paths(v, path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from key_paths(v, join_key(prefix, i))


def at(text: str, line: int, col: int) -> str:
    return text.splitlines()[line - 1][col - 1:]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(doc=st.dictionaries(KEYS, DOCS, max_size=4), indent=st.sampled_from([None, 0, 2, 4]))
def test_json_positions_point_at_their_keys(doc: dict, indent) -> None:
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    pos = json_positions(text)
    for path, key in key_paths(doc):
        if "." in key or "[" in key:
            continue  # such keys cannot be expressed as unambiguous dotted paths
        assert at(text, *pos[path]).startswith(json.dumps(key, ensure_ascii=False)), (path, text)


TOML_KEYS = st.text(alphabet="abcxyz_-", min_size=1, max_size=6)
TOML_SCALARS = st.one_of(st.integers(-1000, 1000), st.booleans(), st.text(alphabet="ab[]{}=#\"' \n", max_size=6))
TOML_TABLES = st.recursive(st.dictionaries(TOML_KEYS, TOML_SCALARS, max_size=3),
                           lambda kids: st.dictionaries(TOML_KEYS, st.one_of(TOML_SCALARS, kids,
                                                                             st.lists(kids, min_size=1, max_size=2)),
                                                        max_size=3), max_leaves=10)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(doc=TOML_TABLES, multiline=st.booleans())
def test_toml_positions_point_at_their_keys(doc: dict, multiline: bool) -> None:
    text = tomli_w.dumps(doc, multiline_strings=multiline)
    pos = toml_positions(text)
    for path, key in key_paths(doc):
        if path not in pos:
            # tomli_w writes lists of scalars and empty tables inline; only table/array-of-table keys and
            # `key =` lines are positioned
            continue
        line, _col = pos[path]
        assert key in text.splitlines()[line - 1], (path, text)
    # every top-level key is positioned
    for key in doc:
        assert key in pos, (key, text)
