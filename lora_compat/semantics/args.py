"""``key=value`` argument lists: ``network_args``, ``optimizer_args`` and ``lr_scheduler_args``.

sd-scripts reads the three lists with two different rules (train_network.py, library/train_util.py):

* ``network_args``: ``key, value = item.split("=", 1)`` — the value stays a *string*; each network module
  converts it itself (``int()``, ``float()``, ``== "True"``).
* ``optimizer_args`` / ``lr_scheduler_args``: ``key, value = item.split("=")`` then
  ``ast.literal_eval(value)`` — an item without ``=`` or with a second ``=`` stops with ``ValueError``, and so
  does a value that is not a Python literal (``relative_step=true``: ``true`` is not one; ``True`` is).

Every reader, lint rule, the plan and the engine split these lists here, so they cannot disagree.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArgItem:
    """One item of an argument list: as written, its key, and its raw value (None: the item has no ``=``)."""

    item: str
    key: str
    value: str | None


@dataclass(frozen=True)
class ArgProblem:
    """An item sd-scripts cannot parse, and why (its own words where it has some)."""

    item: str
    reason: str


def arg_items(value: Any) -> list[ArgItem]:
    """Split an argument list into items: sd-scripts' list of ``"k=v"`` strings, one space-separated string
    (the kohya_ss GUI's text field), or a dict (already keyed). Split on the first ``=`` and **not** stripped,
    as sd-scripts does (``"conv_dim = 4"`` is the key ``"conv_dim "``, which no network module reads: see
    :func:`network_arg_problems`); an item without ``=`` has ``value=None``. Anything else gives ``[]`` (an
    invalid value the validator reports)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [ArgItem(f"{k}={v}", str(k), None if v is None else str(v)) for k, v in value.items()]
    if isinstance(value, str):
        items: list[Any] = value.split()
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        return []
    out = []
    for raw in items:
        text = str(raw)
        key, sep, val = text.partition("=")
        out.append(ArgItem(text, key, val if sep else None))
    return out


def network_args(value: Any) -> dict[str, str]:
    """``network_args`` as the network module receives them: ``{key: string value}``, split on the first
    ``=``; a repeated key keeps its last value. An item without ``=`` (sd-scripts stops on it, see
    :func:`network_arg_problems`) is kept with an empty value so nothing is lost silently."""
    return {i.key: ("" if i.value is None else i.value) for i in arg_items(value)}


#: The reason of an item without ``=`` (sd-scripts stops with ``ValueError``).
NOT_KEY_VALUE = "not key=value"
SPACED_KEY = ("the key has spaces around it: sd-scripts keeps them ({key!r}), so {what} never sees {bare!r}; "
              "write {bare}={value}")


def _spaced_key(i: ArgItem, what: str) -> ArgProblem | None:
    if i.key == i.key.strip():
        return None
    value = "" if i.value is None else i.value.strip()
    return ArgProblem(i.item, SPACED_KEY.format(key=i.key, what=what, bare=i.key.strip(), value=value))


def network_arg_problems(value: Any) -> list[ArgProblem]:
    """``network_args`` items sd-scripts stops on (``split("=", 1)`` needs an ``=``) or passes under a key no
    network module reads (spaces around the key)."""
    out = []
    for i in arg_items(value):
        problem = ArgProblem(i.item, NOT_KEY_VALUE) if i.value is None else _spaced_key(i, "the network module")
        if problem is not None:
            out.append(problem)
    return out


def literal_args(value: Any) -> tuple[dict[str, Any], list[ArgProblem]]:
    """``optimizer_args`` / ``lr_scheduler_args`` as sd-scripts parses them: ``({key: Python value},
    problems)``. Values go through :func:`ast.literal_eval`, which never runs code; items sd-scripts would stop
    on are left out of the dict and listed as problems."""
    out: dict[str, Any] = {}
    problems: list[ArgProblem] = []
    for i in arg_items(value):
        if i.value is None:
            problems.append(ArgProblem(i.item, NOT_KEY_VALUE))
            continue
        if "=" in i.value:
            problems.append(ArgProblem(i.item, "more than one '=' (sd-scripts splits on every '=')"))
            continue
        spaced = _spaced_key(i, "the optimizer or scheduler (it stops on the unknown argument)")
        if spaced is not None:
            problems.append(spaced)
            continue
        try:
            out[i.key] = ast.literal_eval(i.value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            problems.append(ArgProblem(i.item, "the value is not a Python literal (True/False, numbers, "
                                       "quoted strings: key='text')"))
    return out, problems


def arg_int(args: dict[str, str], key: str) -> int | None:
    """An int-valued network arg (``int()`` in ``networks.lora``; ``"4.0"`` is read as 4 here, which
    sd-scripts refuses: the plan reports that separately); None when absent or unparsable."""
    raw = args.get(key)
    if raw in (None, "", "None"):
        return None
    try:
        return int(float(raw))
    except (ValueError, OverflowError):
        return None


def arg_float(args: dict[str, str], key: str) -> float | None:
    """A float-valued network arg as ``networks.lora`` parses it (``float()``); None when absent or unparsable."""
    raw = args.get(key)
    if raw in (None, "", "None"):
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def arg_true(args: dict[str, str], key: str) -> bool:
    """A boolean network arg the way sd-scripts' network modules test it: exactly ``"True"``."""
    return args.get(key) == "True"


def pattern_values(text: str, *, as_int: bool = False) -> dict[str, Any]:
    """``"regex=value,regex=value"`` as sd-scripts' FLUX/SD3 network modules parse ``network_reg_lrs`` (float)
    and ``network_reg_dims`` (int) (``parse_kv_pairs``): split on ``,``, then on the first ``=``, both sides
    stripped; an empty part, a part without ``=`` or a value that does not convert is skipped (sd-scripts
    logs a warning and goes on); a repeated pattern keeps its last value."""
    pairs: dict[str, Any] = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part or "=" not in part:
            continue
        key, value = (s.strip() for s in part.split("=", 1))
        try:
            pairs[key] = int(value) if as_int else float(value)
        except ValueError:
            continue
    return pairs
