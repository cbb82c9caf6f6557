"""Turning values as legacy front-ends wrote them into typed canonical values, with provenance.

Shared by the kohya_ss GUI, Derrian ArgStore and Derrian UI TOML readers. Two parts:

* pure coercion functions (:func:`coerce`, :func:`split_args_string`, :func:`args_table_to_list`):
  string numbers, floats for ints, ``""`` meaning "unset", booleans written as strings;
* :class:`Normalizer`, the small builder every reader uses to put a value into a
  :class:`~lora_compat.config.model.CanonicalConfig` together with its :class:`Provenance`, or to record
  an unknown key, a front-end-only key, an invalid value or a :class:`Note`.

The canonical type of an option is read from ``schemas/sd-scripts.schema.json`` (its ``x-cli`` argparse
facts) through :mod:`lora_compat.config.options`; nothing here knows what an option means.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from lora_compat.config.model import (
    CanonicalConfig,
    FrontendOnlyKey,
    InvalidValue,
    Note,
    Origin,
    Provenance,
    Setting,
    UnknownKey,
)


class _Unset:
    """The front-end meant "not set" (``""``, ``null``)."""

    _instance = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

# value kinds understood by coerce()
INT = "int"
FLOAT = "float"
NUMBER = "number"            # int or float, kept as written (e.g. network_alpha 1 / 0.5)
INT_OR_FLOAT = "int_or_float"  # sd-scripts' lr_warmup_steps type: float < 1 = ratio
BOOL = "bool"
STR = "str"
STR_LIST = "list[str]"
FLOAT_LIST = "list[float]"
INT_LIST = "list[int]"
ANY = "any"


@dataclass
class Coerced:
    """Result of :func:`coerce`: the value (or UNSET), whether it differs from the raw value, or an error."""

    value: Any
    changed: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def show(value: Any) -> str:
    """A value as it appears in conversion texts: JSON-like (strings quoted, lists in brackets)."""
    if value is UNSET:
        return "unset"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _parse_number(text: str) -> int | float | None:
    t = text.strip()
    if not t:
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return None
    if math.isnan(f) or math.isinf(f):
        return None
    return f


def coerce(raw: Any, kind: str) -> Coerced:
    """Coerce ``raw`` (as a front-end wrote it) to ``kind``.

    ``None`` and ``""`` mean unset for every kind except ``str`` (where ``""`` is also unset: no front-end
    passes an empty string on). Numeric strings are accepted (``"0.0001"``), integral floats become ints
    (``64.0`` -> 64), booleans written as strings (``"True"``) become booleans. A non-integral float for an
    int option is an error (the caller decides whether the front-end truncated it).
    """
    if raw is None:
        return Coerced(UNSET, changed=True)
    if isinstance(raw, str) and raw.strip() == "" and kind != ANY:
        return Coerced(UNSET, changed=True)
    if kind == ANY:
        return Coerced(raw)
    if kind in (INT, FLOAT, NUMBER, INT_OR_FLOAT):
        return _coerce_number(raw, kind)
    if kind == BOOL:
        if isinstance(raw, bool):
            return Coerced(raw)
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return Coerced(raw.strip().lower() == "true", changed=True)
        if isinstance(raw, (int, float)) and raw in (0, 1):
            return Coerced(bool(raw), changed=True)
        return Coerced(raw, error="expected true or false")
    if kind == STR:
        if isinstance(raw, str):
            return Coerced(raw)
        if isinstance(raw, bool):
            return Coerced(raw, error="expected a string, got a boolean")
        if isinstance(raw, (int, float)):
            return Coerced(str(raw), changed=True)
        return Coerced(raw, error="expected a string")
    if kind in (STR_LIST, FLOAT_LIST, INT_LIST):
        items = raw if isinstance(raw, list) else [raw]
        inner = {STR_LIST: STR, FLOAT_LIST: FLOAT, INT_LIST: INT}[kind]
        out, changed = [], not isinstance(raw, list)
        for item in items:
            c = coerce(item, inner)
            if not c.ok:
                return Coerced(raw, error=f"list item {show(item)}: {c.error}")
            if c.value is UNSET:
                changed = True
                continue
            changed = changed or c.changed
            out.append(c.value)
        return Coerced(out if out else UNSET, changed=changed or not out)
    raise ValueError(f"unknown value kind {kind!r}")


def coerce_like_python_int(raw: Any, kind: str) -> Coerced:
    """:func:`coerce`, except that for an int option a non-integral number is truncated the way the Python
    front-ends' ``int(float(x))`` does (``1.9`` / ``"1.9"`` -> 1, reference legacy-dialects.md §2.1), instead
    of being an error. Non-numbers and non-finite values stay errors."""
    c = coerce(raw, kind)
    if c.ok or kind != INT:
        return c
    cf = coerce(raw, FLOAT)
    if cf.ok and cf.value is not UNSET:
        return Coerced(int(cf.value), changed=True)
    return c


def _coerce_number(raw: Any, kind: str) -> Coerced:
    if isinstance(raw, bool):
        # Python front-ends treat False/True as 0/1 (e.g. "min_timestep": false in a kohya preset)
        return Coerced(int(raw), changed=True)
    changed = False
    if kind == INT_OR_FLOAT and isinstance(raw, str):
        return _int_or_float_text(raw)
    if isinstance(raw, str):
        num = _parse_number(raw)
        if num is None:
            want = "an integer" if kind == INT else "a number"
            return Coerced(raw, error=f"expected {want}, got {show(raw)}")
        changed = True
    elif isinstance(raw, float) and not math.isfinite(raw):
        # JSON NaN/Infinity (Python's json accepts them) or TOML nan/inf: no setting means that, and int()
        # of it would crash the front-end
        return Coerced(raw, error=f"expected a finite number, got {raw}")
    elif isinstance(raw, (int, float)):
        num = raw
    else:
        return Coerced(raw, error="expected a number")
    if kind == INT:
        if isinstance(num, float):
            if not num.is_integer():
                return Coerced(raw, error=f"expected an integer, got {show(raw)}")
            return Coerced(int(num), changed=True)
        return Coerced(num, changed=changed)
    if kind == FLOAT:
        try:
            return Coerced(float(num), changed=changed)
        except OverflowError:   # a 310+ digit integer is valid JSON/TOML but has no float value
            return Coerced(raw, error=f"expected a number, got an integer with {len(str(abs(num)))} digits")
    if kind == INT_OR_FLOAT:
        # a JSON/TOML number keeps its type: sd-scripts reads an int as steps and a float as a ratio of the
        # total steps (1.0 = 100 %), reference §2.1
        return Coerced(num, changed=changed)
    return Coerced(num, changed=changed)  # NUMBER


def _int_or_float_text(text: str) -> Coerced:
    """sd-scripts' ``int_or_float`` argparse type for text: ``"10"`` steps, ``"0.1"`` / ``"10%"`` a ratio;
    a float text >= 1 (``"1.0"``, ``"1e2"``) is an argparse error."""
    t = text.strip()
    if t.endswith("%"):
        num = _parse_number(t[:-1])
        if num is None:
            return Coerced(text, error=f"expected a number of steps or a ratio, got {show(text)}")
        return Coerced(float(num) / 100, changed=True)
    try:
        return Coerced(int(t), changed=True)
    except ValueError:
        pass
    num = _parse_number(t)
    if num is None or num >= 1:
        return Coerced(text, error=f"expected an integer number of steps or a ratio below 1, got {show(text)}")
    return Coerced(float(num), changed=True)


def split_args_string(text: str) -> list[str]:
    """Split a kohya_ss GUI ``optimizer_args``/``network_args``/``lr_scheduler_args`` string like the GUI.

    The GUI (2024-04 onward) removes every double quote, then splits on whitespace:
    ``'"decouple=True" "weight_decay=0.01"'`` -> ``["decouple=True", "weight_decay=0.01"]``.
    A value containing a space (``betas=0.9, 0.99``) therefore falls apart, as it did in the GUI.
    """
    return text.replace('"', "").split()


def args_table_to_list(table: dict[str, Any]) -> list[str]:
    """A Derrian args table ``{k: v}`` -> sd-scripts ``["k=v", ...]``; lists joined with commas."""
    out = []
    for k, v in table.items():
        if isinstance(v, list):
            v = ",".join(str(x) for x in v)
        elif isinstance(v, bool):
            v = "True" if v else "False"
        out.append(f"{k}={v}")
    return out


@cache
def canonical_kind(name: str) -> str:
    """How a canonical option's value is typed, from its argparse facts in the sd-scripts schema."""
    from lora_compat.config import options

    spec = options.spec(name)
    if spec is None:
        return ANY
    cli = spec.get("x-cli") or {}
    action = cli.get("action")
    typ = cli.get("type")
    if action in ("store_true", "store_false") or typ == "bool":
        return BOOL
    nargs = cli.get("nargs")
    if nargs in ("*", "+") or (isinstance(nargs, int) and nargs > 1):
        return {"float": FLOAT_LIST, "int": INT_LIST}.get(str(typ), STR_LIST)
    if typ in ("int", "float", "str", "int_or_float"):
        return {"int": INT, "float": FLOAT, "str": STR, "int_or_float": INT_OR_FLOAT}[typ]
    jtype = spec.get("type")
    types = jtype if isinstance(jtype, list) else [jtype]
    for t, k in (("boolean", BOOL), ("integer", INT), ("number", FLOAT), ("string", STR), ("array", STR_LIST)):
        if t in types:
            return k
    return ANY


def is_zero_like(value: Any) -> bool:
    """The Python test the front-ends used to drop values: ``value in ("", False, None)`` (0 == False)."""
    if value is UNSET or value is None:
        return True
    if isinstance(value, (list, dict)):
        return len(value) == 0
    try:
        return value == "" or value == 0
    except Exception:  # pragma: no cover - exotic types
        return False


# --------------------------------------------------------------------------------------------------------
class Normalizer:
    """Writes canonical values into ``cfg`` with provenance pointing back into ``doc``.

    ``doc`` is a :class:`lora_compat.config.document.Document` (only ``path``, ``origin()`` and ``value_at()``
    are used).
    """

    def __init__(self, doc: Any, cfg: CanonicalConfig):
        self.doc = doc
        self.cfg = cfg

    # -- origins -----------------------------------------------------------------------------------
    def origin(self, key: str) -> Origin:
        return self.doc.origin(key)

    def origins(self, keys: Iterable[str]) -> tuple[Origin, ...]:
        return tuple(self.doc.origin(k) for k in keys)

    # -- values ------------------------------------------------------------------------------------
    def put(self, name: str, value: Any, *, kind: str, keys: str | Iterable[str] | None = None,
            conversion: str | None = None, target: dict[str, Setting] | None = None) -> None:
        """Set canonical option (or dataset param when ``target`` is given) ``name``.

        ``keys``: the key path(s) the value came from (first = main origin); None for pure defaults.
        """
        if isinstance(keys, str):
            keys = [keys]
        origins = self.origins(keys) if keys else ()
        prov = Provenance(kind=kind, origins=origins, conversion=conversion)
        (self.cfg.options if target is None else target)[name] = Setting(value, prov)

    # -- records -----------------------------------------------------------------------------------
    def invalid(self, name: str, key: str, raw: Any, reason: str) -> None:
        self.cfg.invalid.append(InvalidValue(option=name, value=raw, origin=self.origin(key), reason=reason))

    def unknown(self, key: str, value: Any, reason: str = "not a known key of this dialect") -> None:
        self.cfg.unknown_keys.append(UnknownKey(key=key, value=value, origin=self.origin(key), reason=reason))

    def frontend_only(self, key: str, value: Any, reason: str) -> None:
        self.cfg.frontend_only.append(FrontendOnlyKey(key=key, value=value, origin=self.origin(key), reason=reason))

    def note(self, code: str, message: str, key: str | None = None, **data: Any) -> None:
        from lora_compat.config.notes import NOTE_CODES

        if code not in NOTE_CODES:  # a typo here must fail loudly in tests, not produce an unknown code
            raise KeyError(f"note code {code!r} is not listed in lora_compat.config.notes.NOTE_CODES")
        self.cfg.notes.append(Note(code=code, message=message, origin=self.origin(key) if key else None,
                                   data=data))


__all__ = [
    "ANY",
    "BOOL",
    "FLOAT",
    "FLOAT_LIST",
    "INT",
    "INT_LIST",
    "INT_OR_FLOAT",
    "NUMBER",
    "STR",
    "STR_LIST",
    "UNSET",
    "Coerced",
    "Normalizer",
    "args_table_to_list",
    "canonical_kind",
    "coerce",
    "is_zero_like",
    "show",
    "split_args_string",
]
