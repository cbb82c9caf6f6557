"""Validate canonical values against the schemas (type, enum, range), naming the key as written.

:func:`validate_options` checks ``cfg.options`` against ``schemas/sd-scripts.schema.json`` and the dataset
parameters (``cfg.general``, ``cfg.datasets``) against ``schemas/sd-scripts-dataset.schema.json`` with a
jsonschema ``Draft202012Validator`` per option (imported lazily: loading a config that needs no validation
never imports jsonschema). Each problem is an :class:`~lora_compat.config.model.InvalidValue` whose origin is
the value's ``Setting.prov.origin`` (file, key as written, line).

Besides JSON Schema, two sd-scripts facts that JSON Schema cannot express are checked here:

* options whose argparse type is ``int`` must hold a Python int: a ``--config_file`` TOML value is not
  converted by sd-scripts, so ``max_train_epochs = 10.0`` stays a float (reference §2.1, golden
  ``config_types_not_converted``) although JSON Schema counts 10.0 as an integer;
* dataset keys and options marked ``x-strict-float`` (voluptuous ``float``) reject integers
  (``validation_split = 0``, §2.3, §3.2).

Allowed-key-per-level and dataset-kind rules of the dataset config are checked by the dataset reader
(:func:`lora_compat.config.dataset.check_dataset_config`), not repeated here.

Speed: importing jsonschema costs ~0.1 s, a third of ``show``'s budget. A value is first checked by
:func:`_surely_valid`, a conservative evaluator of the few keywords option schemas use; only a value it cannot
accept goes to jsonschema, which gives the verdict and the message. So jsonschema is imported only when some
value is (probably) invalid, and every "invalid" verdict is jsonschema's (tests check that the fast path never
accepts what jsonschema rejects).
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING, Any

from lora_compat.config import options
from lora_compat.config.model import CanonicalConfig, InvalidValue, Origin, Setting
from lora_compat.config.secrets import REDACTED, is_secret_key, redact

if TYPE_CHECKING:  # pragma: no cover
    from jsonschema import Draft202012Validator

_TYPE_WORDS = {"boolean": "a boolean (true/false)", "integer": "an integer", "number": "a number",
               "string": "a string", "array": "a list", "object": "a table", "null": "unset"}


@cache
def _option_validator(name: str) -> Draft202012Validator | None:
    """A validator for one canonical option's property schema (cached per option)."""
    from jsonschema import Draft202012Validator

    spec = options.spec(name)
    if spec is None:
        return None
    return Draft202012Validator(_constraints(spec))


@cache
def _dataset_validator(name: str) -> Draft202012Validator | None:
    """A validator for one dataset-config key (from ``$defs/params``), cached per key."""
    from jsonschema import Draft202012Validator

    spec = options.dataset_spec(name)
    if spec is None:
        return None
    return Draft202012Validator(_constraints(spec))


_FAST_TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality for scalars (``True`` is not ``1``)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool) and (a is None) == (b is None)


def _surely_valid(schema: dict[str, Any], value: Any) -> bool:
    """True only when ``value`` certainly satisfies ``schema``; False means "ask jsonschema".

    Knows ``type``, ``enum``, the four bounds, ``items`` (one schema), ``minItems``/``maxItems``, ``anyOf`` and
    ``oneOf`` (when the branches differ by type); any other keyword makes it answer False.
    """
    for key, want in schema.items():
        if key == "type":
            types = want if isinstance(want, list) else [want]
            if not any(t in _FAST_TYPES and _FAST_TYPES[t](value) for t in types):
                return False
        elif key == "enum":
            if isinstance(value, (list, dict)) or not any(_same(value, e) for e in want):
                return False
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue  # bounds only apply to numbers
            if (key == "minimum" and value < want) or (key == "maximum" and value > want) or \
                    (key == "exclusiveMinimum" and value <= want) or (key == "exclusiveMaximum" and value >= want):
                return False
        elif key == "items":
            if isinstance(value, list) and not (isinstance(want, dict) and all(_surely_valid(want, v)
                                                                                for v in value)):
                return False
        elif key in ("minItems", "maxItems"):
            if isinstance(value, list) and ((key == "minItems" and len(value) < want)
                                            or (key == "maxItems" and len(value) > want)):
                return False
        elif key == "anyOf":
            if not any(_surely_valid(branch, value) for branch in want):
                return False
        elif key == "oneOf":
            # exactly one branch accepts, and every other branch rejects the value by its type
            ok = [b for b in want if _surely_valid(b, value)]
            if len(ok) != 1 or not all(_wrong_type(b, value) for b in want if b is not ok[0]):
                return False
        else:
            return False
    return True


def _wrong_type(schema: dict[str, Any], value: Any) -> bool:
    """True when ``schema`` has a ``type`` that ``value`` certainly does not have."""
    want = schema.get("type")
    if want is None:
        return False
    types = want if isinstance(want, list) else [want]
    return all(t in _FAST_TYPES and not _FAST_TYPES[t](value) for t in types)


def _constraints(spec: dict[str, Any]) -> dict[str, Any]:
    """The validating keywords of a property (drops annotations so error messages stay about the value)."""
    keep = ("type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "items",
            "minItems", "maxItems", "oneOf", "anyOf", "pattern", "minLength", "maxLength")
    return {k: v for k, v in spec.items() if k in keep}


def _show(value: Any, key: str) -> str:
    """A value for a message: credentials are never shown."""
    shown = redact(key, value)
    return shown if shown is REDACTED else repr(value)


def _expected_types(types: Any) -> str:
    ts = types if isinstance(types, list) else [types]
    words = [_TYPE_WORDS.get(t, str(t)) for t in ts if t != "null"]
    return " or ".join(words) if words else "unset"


def _reason(err: Any, value: Any, key: str) -> str:
    """A one-line, user-facing reason for a jsonschema error on ``value``."""
    shown = _show(err.instance, key)
    v = err.validator
    if v == "type":
        return f"expected {_expected_types(err.validator_value)}, got {shown} ({type(err.instance).__name__})"
    if v == "enum":
        allowed = ", ".join("unset" if a is None else str(a) for a in err.validator_value)
        return f"{shown} is not one of: {allowed}"
    if v == "minimum":
        return f"{shown} is below the minimum {err.validator_value}"
    if v == "maximum":
        return f"{shown} is above the maximum {err.validator_value}"
    if v == "exclusiveMinimum":
        return f"{shown} must be greater than {err.validator_value}"
    if v == "exclusiveMaximum":
        return f"{shown} must be less than {err.validator_value}"
    if v in ("minItems", "maxItems"):
        return f"{shown} must have exactly {err.validator_value} items" if v == "minItems" else \
            f"{shown} has more than {err.validator_value} items"
    if v in ("oneOf", "anyOf"):
        return f"{shown} has the wrong shape (expected an int or [width, height])" if key.endswith("resolution") \
            else f"{shown} does not match any allowed form"
    return err.message if not is_secret_key(key) else f"invalid value ({v})"


def _origin(setting: Setting, file: str, key: str) -> Origin:
    o = setting.prov.origin
    return o if o is not None else Origin(file=file, key=key)


def _is_python_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(constraints: dict[str, Any], get_validator: Any, name: str, setting: Setting, origin: Origin,
           out: list[InvalidValue]) -> None:
    value = setting.value
    if isinstance(value, float) and not math.isfinite(value):
        # TOML nan/inf and JSON NaN/Infinity pass every JSON Schema number check, and sd-scripts does not
        # type-check --config_file values: the run would start and produce a NaN loss or a NaN LoRA
        out.append(InvalidValue(name, value, origin, f"expected a finite number, got {value!r}"))
        return
    if _surely_valid(constraints, value):
        return
    validator = get_validator(name)
    errors = sorted(validator.iter_errors(value), key=lambda e: (len(e.path), e.validator))
    if errors:
        err = errors[0]  # one problem per value: the most basic (type before range)
        shown_value = redact(name, value)
        out.append(InvalidValue(name, shown_value, origin, _reason(err, value, name)))


def _check_option(name: str, setting: Setting, cfg: CanonicalConfig, out: list[InvalidValue]) -> None:
    spec = options.spec(name)
    if spec is None:
        return
    origin = _origin(setting, cfg.source, name)
    before = len(out)
    _check(_constraints(spec), _option_validator, name, setting, origin, out)
    if len(out) > before:
        return
    cli = options.cli(name) or {}
    value = setting.value
    if (options.spec(name) or {}).get("x-strict-float") and _is_python_int(value):
        out.append(InvalidValue(name, value, origin,
                                f"expected a float, got the integer {value!r}: sd-scripts' dataset sanitizer "
                                f"rejects integers here (write {float(value)!r})"))
        return
    if cli.get("type") == "int" and cli.get("nargs") is None and isinstance(value, float):
        # JSON Schema calls 10.0 an integer; sd-scripts keeps a TOML float as float (no argparse conversion)
        out.append(InvalidValue(name, value, origin,
                                f"expected an integer, got {value!r} (a float: sd-scripts does not convert "
                                f"--config_file values, write {int(value) if value.is_integer() else value})"))


def _check_dataset_level(level: dict[str, Setting], path: str, cfg: CanonicalConfig,
                         out: list[InvalidValue]) -> None:
    for key, setting in level.items():
        spec = options.dataset_spec(key)
        if spec is None:
            continue  # unknown keys are the dataset reader's "extra keys not allowed" finding
        origin = _origin(setting, cfg.source, f"{path}.{key}" if path else key)
        before = len(out)
        _check(_constraints(spec), _dataset_validator, key, setting, origin, out)
        if len(out) > before:
            continue
        value = setting.value
        strict = spec.get("x-strict-float") or (spec.get("items") or {}).get("x-strict-float")
        if strict:
            items = value if isinstance(value, (list, tuple)) else [value]
            if any(_is_python_int(v) for v in items):
                out.append(InvalidValue(key, value, origin,
                                        "sd-scripts' dataset config requires a float here and rejects integers "
                                        "(voluptuous float): write 0.0 / 1.0, not 0 / 1"))


def validate_options(cfg: CanonicalConfig) -> list[InvalidValue]:
    """Every value of ``cfg`` that breaks its schema (type, enum, minimum/maximum, strict int/float).

    Options not in the schema are ignored (readers report them as unknown keys). The result names each
    option (canonical name or dataset key), the value and its origin (key as written, line).
    """
    out: list[InvalidValue] = []
    for name, setting in cfg.options.items():
        _check_option(name, setting, cfg, out)
    _check_dataset_level(cfg.general, "general", cfg, out)
    for di, ds in enumerate(cfg.datasets):
        _check_dataset_level(ds.params, f"datasets[{di}]", cfg, out)
        for si, sub in enumerate(ds.subsets):
            _check_dataset_level(sub.params, f"datasets[{di}].subsets[{si}]", cfg, out)
    return out


def validate_values(values: dict[str, Any], *, source: str = "<values>") -> list[InvalidValue]:
    """Validate plain ``{option: value}`` pairs (no provenance), e.g. for tests or generated configs."""
    cfg = CanonicalConfig(dialect="native", source=source)
    for name, value in values.items():
        cfg.options[name] = Setting(value)
    return validate_options(cfg)


def refuse_invalid(cfg: CanonicalConfig) -> None:
    """Refuse a config holding values that failed conversion: one line naming file, line and key of the first
    (with how many more), control characters escaped. ``show`` displays such configs instead; ``lint`` reports
    them; ``migrate``, ``plan`` and ``train`` stop here."""
    from lora_compat.errors import UserError

    if not cfg.invalid:
        return
    bad = cfg.invalid[0]
    o = bad.origin
    more = f" (and {len(cfg.invalid) - 1} more; see lora-compat lint)" if len(cfg.invalid) > 1 else ""
    raise UserError(f"{bad.reason}{more}", file=o.file, line=o.line, col=o.col, key=o.key)
