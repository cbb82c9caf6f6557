"""Read option facts (type, default, enum, range, meaning, annotations) from schemas/.

This is the only module that knows where an option's meaning is written. Everything else asks here.

Schemas read (all cached, loaded on first use; no jsonschema import here):

* ``schemas/sd-scripts.schema.json`` — every canonical option (sd-scripts long option names + pseudo-option
  ``sdxl``): JSON type, ``default``, ``enum``, bounds, ``description`` and annotations ``x-cli`` (argparse facts),
  ``x-scripts`` (the scripts that add an option train_network.py lacks), ``x-defaults`` (defaults that differ per
  family's script), ``x-recommended``, ``x-group``, ``x-arch``, ``x-since``, ``x-peft``, ``x-diffusers``,
  ``x-misconception``, ``x-secret``, ``x-security``, ``x-dataset-key``, ``x-ref``.
* ``schemas/sd-scripts-dataset.schema.json`` — dataset-config keys (``$defs/params``) with ``x-levels`` and
  ``x-option`` (the command-line option they fall back to).
* the dialect schemas (``kohya-gui``, ``derrian-argstore``, ``derrian-toml``, ``native``) — only for the names an
  option has in each dialect (their ``x-canonical`` links); absent files are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from lora_compat.resources import load_schema

CANONICAL_SCHEMA = "sd-scripts.schema.json"
DATASET_SCHEMA = "sd-scripts-dataset.schema.json"
# dialect id -> schema file holding `x-canonical` links (written by the "dialects" and "plan" engineers)
DIALECT_SCHEMAS = {
    "kohya-gui": "kohya-gui.schema.json",
    "derrian-argstore": "derrian-argstore.schema.json",
    "derrian-toml": "derrian-toml.schema.json",
    "native": "native.schema.json",
}
# dataset-config levels (x-levels): [general], [[datasets]] and [[datasets.subsets]] per dataset kind
DATASET_LEVELS = ("G", "D-DB", "D-FT", "D-CN", "S-DB", "S-FT", "S-CN")
_JSON_TYPE_ORDER = ("boolean", "integer", "string", "array", "object", "number")


# ----------------------------------------------------------------------------------- canonical options
@cache
def _properties() -> dict[str, dict[str, Any]]:
    return load_schema(CANONICAL_SCHEMA).get("properties", {})


def option_names() -> list[str]:
    """Every canonical option name (sd-scripts long option names, plus pseudo-option ``sdxl``).

    The order is sd-scripts' argparse registration order (``sdxl`` last).
    """
    return list(_properties())


def is_option(name: str) -> bool:
    """True when ``name`` is a canonical option name (exact, no alias resolution)."""
    return name in _properties()


def spec(name: str) -> dict[str, Any] | None:
    """The schema property of ``name`` (type, default, enum, description, x-* annotations) or None."""
    return _properties().get(name)


def _get(name: str, key: str, fallback: Any = None) -> Any:
    s = spec(name)
    return fallback if s is None else s.get(key, fallback)


#: The LoRA training script of the SD1/SD2 families; every other LoRA script's parser extends its parser.
BASE_SCRIPT = "train_network.py"


def scripts(name: str) -> list[str] | None:
    """The LoRA scripts whose parser has ``name`` although train_network.py's has not (``x-scripts``: the DiT and
    SDXL additions); None when every script has it (train_network.py's own options and unknown names)."""
    found = _get(name, "x-scripts")
    return list(found) if found else None


def accepted_by(name: str, script: str) -> bool:
    """True when ``script``'s argparse parser has option ``name`` (``guidance_scale``: flux_train_network.py only).

    Scripts lora-compat knows no parser for are treated as train_network.py plus their own additions."""
    if not is_option(name) or is_pseudo(name):
        return False
    found = scripts(name)
    return found is None or script in found


def option_families(name: str) -> tuple[str, ...] | None:
    """Families whose LoRA script accepts ``name``; None when every family's script does (see :func:`scripts`)."""
    found = scripts(name)
    if found is None:
        return None
    from lora_compat.arch.families import script_families

    out: list[str] = []
    for script in found:
        for fam in script_families(script):
            if fam not in out:
                out.append(fam)
    return tuple(out)


def family_defaults(name: str) -> dict[str, Any]:
    """Defaults that differ per family's script (``x-defaults``: ``discrete_flow_shift`` 3.0 for FLUX.1, 6.0 for
    Lumina 2 ...); ``{}`` when the one ``default`` holds for every script that accepts the option."""
    return dict(_get(name, "x-defaults") or {})


def recommended(name: str, family: str | None = None) -> Any:
    """The value sd-scripts' documentation recommends for ``family`` where it differs from the default
    (``guidance_scale``: 1.0 for FLUX.1, 0.0 for Chroma), else None."""
    rec = _get(name, "x-recommended") or {}
    return rec.get(family) if family is not None else None


def default(name: str, family: str | None = None) -> Any:
    """sd-scripts' default for ``name`` (None when it has none or the option is unknown).

    With ``family`` (an id of :mod:`lora_compat.arch.families`), the default of that family's script: its own
    value where defaults differ per script (``x-defaults``), and None when the family's script has no such option
    (``guidance_scale`` for SD1.x: train_network.py does not know it).
    """
    if family is not None:
        per_family = family_defaults(name)
        if family in per_family:
            return per_family[family]
        fams = option_families(name)
        if fams is not None and family not in fams:
            return None
    return _get(name, "default")


def description(name: str) -> str:
    """The option's real meaning (one paragraph); ``""`` for unknown names."""
    return _get(name, "description", "")


def json_types(name: str) -> tuple[str, ...]:
    """The JSON types a value of ``name`` may have, e.g. ``("integer", "null")``; ``()`` for unknown names."""
    t = _get(name, "type")
    if t is None:
        return ()
    return tuple(t) if isinstance(t, list) else (t,)


def value_type(name: str) -> str | None:
    """The main JSON type of ``name`` without ``null`` (``"integer"``, ``"number"``, ``"array"`` ...)."""
    types = [t for t in json_types(name) if t != "null"]
    for t in _JSON_TYPE_ORDER:  # "number" last: ["array", "number"] (text_encoder_lr) is an array option
        if t in types:
            return t
    return None


def enum(name: str) -> list[Any] | None:
    """Allowed values (``enum``) of ``name`` or None when any value of its type is allowed."""
    return _get(name, "enum")


def bounds(name: str) -> dict[str, float]:
    """``minimum`` / ``maximum`` / ``exclusiveMinimum`` / ``exclusiveMaximum`` of ``name`` (only those set)."""
    s = spec(name) or {}
    return {k: s[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in s}


def cli(name: str) -> dict[str, Any] | None:
    """argparse facts of ``name``: ``{"type", "action", "nargs", "choices", "const"}``; None for pseudo-options."""
    return _get(name, "x-cli")


def group(name: str) -> str | None:
    """The option's group (``model``, ``dataset``, ``network``, ``optimizer``, ``scheduler`` ...)."""
    return _get(name, "x-group")


def groups() -> dict[str, list[str]]:
    """Group -> option names, in registration order."""
    out: dict[str, list[str]] = {}
    for name, s in _properties().items():
        out.setdefault(s.get("x-group") or "other", []).append(name)
    return out


def arch(name: str) -> list[str] | None:
    """Architectures the option is meaningful for (``["sdxl"]``, ``["sd1", "sd2"]`` ...); None = all."""
    return _get(name, "x-arch")


def applies_to(name: str, arch_id: str) -> bool:
    """True when option ``name`` has an effect for model family ``arch_id`` (``sd1``, ``sdxl``, ``flux1`` ...): its
    script accepts it and it is not one the family ignores (``x-arch``: ``noise_offset`` has none on FLUX.1)."""
    fams = option_families(name)
    if fams is not None and arch_id not in fams:
        return False
    a = arch(name)
    return a is None or arch_id in a


def is_sdxl_only(name: str) -> bool:
    """True for options sdxl_train_network.py adds to train_network.py's parser (the DiT scripts may have them too:
    ``cache_text_encoder_outputs``)."""
    found = scripts(name)
    return found is not None and "sdxl_train_network.py" in found


def is_pseudo(name: str) -> bool:
    """True for options that are not argparse options (``sdxl``)."""
    return bool(_get(name, "x-pseudo", False))


def since(name: str) -> str | None:
    """Date (YYYY-MM-DD) the option appeared in sd-scripts, when known."""
    return _get(name, "x-since")


def peft(name: str) -> str | None:
    """What the option maps to in PEFT (text), when it has a PEFT counterpart or a notable non-counterpart."""
    return _get(name, "x-peft")


def diffusers(name: str) -> str | None:
    """What the option maps to in diffusers (text)."""
    return _get(name, "x-diffusers")


def misconceptions(name: str) -> list[dict[str, Any]]:
    """Wrong beliefs about ``name``: ``[{"as_written", "dialect", "source", "claim", "truth", "quoted"}]``.

    ``claim`` is the wrong text (verbatim from seed 003's chatbot descriptions when ``quoted``, else a
    paraphrased common belief), ``truth`` says what sd-scripts does,
    ``as_written`` is the key name the source used (Derrian ``shuffle_captions`` for ``shuffle_caption``).
    Optional ``trigger`` is a JSON Schema fragment matching RAW values shaped like the belief (``clip_skip``
    written as a boolean, ``xformers`` as a list ...), so lint can tell a config was written under it.
    """
    return list(_get(name, "x-misconception", []) or [])


def misconception_keys() -> dict[str, str]:
    """Every ``as_written`` key of a misconception -> its canonical option name."""
    out: dict[str, str] = {}
    for name, s in _properties().items():
        for m in s.get("x-misconception", []) or []:
            out.setdefault(m["as_written"], name)
    return out


def is_secret(name: str) -> bool:
    """True for options that hold credentials (``x-secret``)."""
    return bool(_get(name, "x-secret", False))


def secret_options() -> list[str]:
    """Every canonical option marked ``x-secret``."""
    return [n for n, s in _properties().items() if s.get("x-secret")]


def security(name: str) -> str | None:
    """Why the option is security-relevant (sd-scripts imports code named by it, pickles ...), or None."""
    return _get(name, "x-security")


def dataset_key(name: str) -> str | None:
    """The dataset-config key this command-line option is the lowest-priority fallback for (§3.3), or None."""
    return _get(name, "x-dataset-key")


def reference(name: str) -> str | None:
    """The reference section the option's facts come from (``x-ref``)."""
    return _get(name, "x-ref")


# ----------------------------------------------------------------------------------- dataset config keys
@cache
def _dataset_params() -> dict[str, dict[str, Any]]:
    return load_schema(DATASET_SCHEMA).get("$defs", {}).get("params", {}).get("properties", {})


def dataset_param_names() -> list[str]:
    """Every sd-scripts dataset-config key (``num_repeats``, ``image_dir``, ``class_tokens`` ...)."""
    return list(_dataset_params())


def is_dataset_param(name: str) -> bool:
    """True when ``name`` is a dataset-config key."""
    return name in _dataset_params()


def dataset_spec(name: str) -> dict[str, Any] | None:
    """The dataset schema entry of key ``name`` (type, default, description, x-levels, x-option)."""
    return _dataset_params().get(name)


def dataset_default(name: str) -> Any:
    """Effective default of a dataset key when no level and no command-line option sets it."""
    s = dataset_spec(name)
    return None if s is None else s.get("default")


def dataset_levels(name: str) -> list[str]:
    """Levels where key ``name`` is allowed (subset of :data:`DATASET_LEVELS`)."""
    s = dataset_spec(name)
    return [] if s is None else list(s.get("x-levels", []))


def dataset_keys_at(level: str) -> list[str]:
    """Keys allowed at ``level`` (``G``, ``D-DB``, ``S-FT`` ...)."""
    if level not in DATASET_LEVELS:
        raise ValueError(f"unknown dataset-config level {level!r}; expected one of {', '.join(DATASET_LEVELS)}")
    return [n for n, s in _dataset_params().items() if level in s.get("x-levels", [])]


def dataset_misconceptions(name: str) -> list[dict[str, Any]]:
    """Wrong beliefs about dataset key ``name`` (same shape as :func:`misconceptions`)."""
    s = dataset_spec(name)
    return [] if s is None else list(s.get("x-misconception", []) or [])


def dataset_fallback_option(name: str) -> str | None:
    """The command-line option a dataset key falls back to (``num_repeats`` -> ``dataset_repeats``), or None."""
    s = dataset_spec(name)
    return None if s is None else s.get("x-option")


# ----------------------------------------------------------------------------------- names in dialects
def _walk_canonical(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any, dict[str, Any]]]:
    """Yield ``(key path, x-canonical, property)`` for every linked property of a dialect schema, any depth."""
    if not isinstance(node, dict):
        return
    for key, sub in (node.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        if "x-canonical" in sub:
            yield (*path, key), sub["x-canonical"], sub
        yield from _walk_canonical(sub, (*path, key))
        # sections written as arrays of tables ([[x]]) or objects whose values are schemas
        for nested in ("items", "additionalProperties"):
            if isinstance(sub.get(nested), dict):
                yield from _walk_canonical(sub[nested], (*path, key))
    for sub in (node.get("$defs") or {}).values():
        yield from _walk_canonical(sub, path)


@cache
def _dialect_schemas() -> tuple[tuple[str, dict[str, Any]], ...]:
    """``(dialect, schema)`` for every dialect schema present."""
    out = []
    for dialect, filename in DIALECT_SCHEMAS.items():
        try:
            out.append((dialect, load_schema(filename)))
        except (FileNotFoundError, ValueError):
            continue
    return tuple(out)


@cache
def dialect_names() -> dict[str, dict[str, list[str]]]:
    """Canonical option -> ``{dialect: [key paths as written in that dialect]}`` from the dialect schemas.

    Dialect schemas that do not exist (yet) are skipped. A key linked to several options (``x-canonical`` list,
    e.g. native ``arch`` -> ``sdxl`` and ``v2``) is listed under each of them.
    """
    out: dict[str, dict[str, list[str]]] = {}
    for dialect, schema in _dialect_schemas():
        for path, canon, _prop in _walk_canonical(schema, ()):
            targets = canon if isinstance(canon, list) else [canon]
            for target in targets:
                if isinstance(target, str) and target:
                    names = out.setdefault(target, {}).setdefault(dialect, [])
                    written = ".".join(path)
                    if written not in names:
                        names.append(written)
    return out


@cache
def frontend_only_keys() -> dict[str, list[dict[str, Any]]]:
    """Dialect keys that map to no sd-scripts option (``x-canonical`` null), by key as written (last part).

    Each entry: ``{"dialect", "key" (full path), "reason" (x-frontend-only), "description"}``.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for dialect, schema in _dialect_schemas():
        for path, canon, prop in _walk_canonical(schema, ()):
            if canon in (None, "", []):
                out.setdefault(path[-1], []).append({
                    "dialect": dialect, "key": ".".join(path), "reason": prop.get("x-frontend-only"),
                    "description": prop.get("description", "")})
    return out


def names_in_dialects(name: str) -> dict[str, list[str]]:
    """The names option ``name`` has in each dialect (``{"derrian-argstore": ["net_dim"], ...}``)."""
    return dict(dialect_names().get(name, {}))


def resolve(name_or_alias: str) -> list[str]:
    """Canonical option names that ``name_or_alias`` refers to (best match first); ``[]`` when unknown.

    Accepts a canonical name, a ``--long_option``, a dataset-config key (-> its fallback option when it has one),
    a key as written in a dialect schema (full dotted path or its last part, e.g. Derrian ``net_dim``), or a key
    named in a misconception (seed 003's ``shuffle_captions``). Matching is case-insensitive.
    """
    raw = name_or_alias.strip()
    key = raw.lstrip("-").strip()
    if not key:
        return []
    if is_option(key):
        return [key]
    low = key.lower()
    for n in _properties():
        if n.lower() == low:
            return [n]
    found: list[str] = []

    def add(n: str) -> None:
        if n not in found:
            found.append(n)

    for canon, per_dialect in dialect_names().items():
        for paths in per_dialect.values():
            for p in paths:
                if p.lower() == low or p.rsplit(".", 1)[-1].lower() == low:
                    add(canon)
    for written, canon in misconception_keys().items():
        if written.lower() == low:
            add(canon)
    for n, s in _properties().items():  # dataset-config keys such as num_repeats -> dataset_repeats
        if (s.get("x-dataset-key") or "").lower() == low:
            add(n)
    return [n for n in found if is_option(n)]
