"""TOML text for dataset configs with explicit ``[[datasets]]`` / ``[[datasets.subsets]]`` headers.

tomli_w writes arrays of tables that contain arrays of tables as inline arrays; the ``toml`` 0.10.2 package
sd-scripts reads with mishandles some of those, and humans read headers more easily.
"""

from __future__ import annotations

import re
from typing import Any

# a tomli_w multi-line array of scalars: "key = [\n    item,\n    item,\n]" (no nested arrays or tables)
_ARRAY = re.compile(r"= \[\n((?: {4}[^\n\[\]{}]+,\n)+)\]\n")


def toml_value_ok(value: Any) -> bool:
    """True when ``value`` can be written as a TOML value (no null anywhere, string keys, known types)."""
    if isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(toml_value_ok(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and toml_value_ok(v) for k, v in value.items())
    return False


def compact_arrays(text: str, width: int = 100) -> str:
    """tomli_w writes every array one item per line; short arrays of scalars read better on one line.

    Applied only where the result parses to the same document (a string item could hold anything).
    """
    from lora_compat.tomlparse import tomllib

    def one_line(m: re.Match[str]) -> str:
        items = [line.strip()[:-1] for line in m.group(1).splitlines()]
        inline = "= [" + ", ".join(items) + "]\n"
        return inline if len(inline) <= width else m.group(0)

    compact = _ARRAY.sub(one_line, text)
    if compact == text:
        return text          # nothing to compact: no need to parse (a megabyte string value parses slowly)
    try:
        return compact if tomllib.loads(compact) == tomllib.loads(text) else text
    except tomllib.TOMLDecodeError:
        return text


def _keys(body: dict[str, Any], header: str) -> str:
    import tomli_w

    scalars = {k: v for k, v in body.items() if not isinstance(v, dict) and k != "subsets"}
    tables = {k: v for k, v in body.items() if isinstance(v, dict)}
    text = tomli_w.dumps(scalars) if scalars else ""
    for k, v in tables.items():
        text += f"\n[{header}.{k}]\n" + tomli_w.dumps(v)
    return text


def dumps_datasets(general: dict[str, Any] | None, datasets: list[dict[str, Any]] | None) -> str:
    """``[general]`` and ``[[datasets]]`` / ``[[datasets.subsets]]`` blocks (empty string when both absent)."""
    parts: list[str] = []
    if general:
        parts.append("[general]\n" + _keys(general, "general"))
    for ds in datasets or []:
        parts.append("[[datasets]]\n" + _keys(ds, "datasets"))
        for sub in ds.get("subsets", []):
            parts.append("[[datasets.subsets]]\n" + _keys(sub, "datasets.subsets"))
    return compact_arrays("\n".join(parts))
