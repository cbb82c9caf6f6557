"""Questions lint rules ask of a :class:`CanonicalConfig`: raw values as written, dataset scopes, parsed numbers.

Readers convert values (``"2"`` -> 2, ``true`` -> 1 ...); misconception rules need what the user really wrote,
so :func:`raw_value` looks at ``Origin.raw``, ``cfg.invalid``, front-end-only and unknown keys.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lora_compat.config.model import DEFAULT, DERIVED, CanonicalConfig, Dataset, Origin, Subset

_MISSING = object()


_KEY_SPLIT = re.compile(r"[.\[\]]")


@lru_cache(maxsize=4096)
def last_key_part(key: str) -> str:
    """``"optimizer_args.args.warmup_ratio"`` -> ``"warmup_ratio"``; ``"--network_dim"`` -> ``"network_dim"``."""
    parts = [p for p in _KEY_SPLIT.split(key.lstrip("-")) if p and not p.isdigit()]
    return parts[-1] if parts else key


@dataclass(frozen=True)
class Raw:
    """A value as written in the file, with where it was written."""

    value: Any
    origin: Origin | None


class _RawIndex:
    """Per-config index: last key part as written -> Raw, for each place a value can sit (built once)."""

    def __init__(self, cfg: CanonicalConfig):
        self.invalid: dict[str, Raw] = {}
        self.side: dict[str, Raw] = {}        # front-end-only and unknown keys
        self.origins: dict[str, Raw] = {}     # any option's origins (legacy keys mapped onto another option)
        for inv in cfg.invalid:
            r = Raw(inv.value, inv.origin)
            self.invalid.setdefault(inv.option, r)
            self.invalid.setdefault(last_key_part(inv.origin.key), r)
        for k in list(cfg.frontend_only) + list(cfg.unknown_keys):
            self.side.setdefault(last_key_part(k.key), Raw(k.value, k.origin))
        for s in cfg.options.values():
            for o in s.prov.origins:
                self.origins.setdefault(last_key_part(o.key), Raw(o.raw if o.raw is not None else s.value, o))
        # a value the reader could not convert into an option (e.g. a warmup ratio whose step estimate is
        # unknown) may survive only as a note's origin
        for n in cfg.notes:
            if n.origin is not None and n.origin.raw is not None:
                self.origins.setdefault(last_key_part(n.origin.key), Raw(n.origin.raw, n.origin))


_INDEX: list = [None, None]    # (config, index) of the config being linted: rules ask many questions of one cfg


def _index(cfg: CanonicalConfig) -> _RawIndex:
    if _INDEX[0] is not cfg:
        _INDEX[0], _INDEX[1] = cfg, _RawIndex(cfg)
    return _INDEX[1]


def raw_value(cfg: CanonicalConfig, option: str | None = None, keys: tuple[str, ...] = ()) -> Raw | None:
    """The value of ``option`` (canonical) or of legacy ``keys`` exactly as written, or None when absent.

    Looks in the option's provenance (``Origin.raw``, else the converted value), then in ``cfg.invalid``,
    ``cfg.frontend_only`` and ``cfg.unknown_keys`` (matching the last part of the key as written).
    """
    names = set(keys) | ({option} if option else set())
    if option and option in cfg.options:
        s = cfg.options[option]
        for o in s.prov.origins:
            if last_key_part(o.key) in names and o.raw is not None:
                return Raw(o.raw, o)
        first = s.prov.origin
        if first is not None and first.raw is not None:
            return Raw(first.raw, first)
        return Raw(s.value, first)
    idx = _index(cfg)
    for table in (idx.invalid, idx.side):
        for name in ((option,) if option else ()) + tuple(keys):
            if name in table:
                return table[name]
    for key in keys:     # a legacy key that the reader mapped onto another option
        if key in idx.origins:
            return idx.origins[key]
    return None


def raw_as_written(cfg: CanonicalConfig, option: str, *legacy: str) -> Raw | None:
    """:func:`raw_value` of ``option`` under its own name or one of its ``legacy`` key names."""
    return raw_value(cfg, option, keys=(option, *legacy))


def is_explicit(cfg: CanonicalConfig, name: str) -> bool:
    """Set by the user (not filled from a front-end default or derived)."""
    s = cfg.options.get(name)
    return s is not None and s.prov.kind not in (DEFAULT, DERIVED)


def is_boolish(v: Any) -> bool:
    """A boolean, or a string that spells one (``"true"``/``"False"``)."""
    return isinstance(v, bool) or (isinstance(v, str) and v.strip().lower() in ("true", "false"))


def get_str(cfg: CanonicalConfig, name: str) -> str | None:
    """The option's value when it is a string (readers keep other types in cfg.invalid, but never trust it)."""
    v = cfg.get(name)
    return v if isinstance(v, str) else None


def effective(cfg: CanonicalConfig, name: str) -> Any:
    """sd-scripts' effective value: the file's, else the schema default (None when the schema is unavailable)."""
    try:
        return cfg.effective(name)
    except (FileNotFoundError, OSError, ValueError):
        return None


# -- dataset scopes --------------------------------------------------------------------------------

@dataclass
class Scope:
    """One place where dataset parameters resolve: a subset (or the command line when there are no subsets)."""

    label: str                 # "datasets[0].subsets[1]" or "" for command-line options
    ds: Dataset | None = None
    sub: Subset | None = None

    def value(self, cfg: CanonicalConfig, name: str, default: Any = None) -> Any:
        if self.sub is not None and self.ds is not None:
            return cfg.subset_value(self.ds, self.sub, name, default)
        if self.ds is not None:
            for level in (self.ds.params, cfg.general):
                if name in level:
                    return level[name].value
        return cfg.get(name, default)

    def origin(self, cfg: CanonicalConfig, name: str) -> Origin | None:
        """Where the value of ``name`` for this scope was written (subset > dataset > general > option)."""
        levels = []
        if self.sub is not None:
            levels.append(self.sub.params)
        if self.ds is not None:
            levels.append(self.ds.params)
        levels.append(cfg.general)
        for level in levels:
            if name in level:
                return level[name].prov.origin
        return cfg.locate(name)

    @property
    def where(self) -> str:
        return f" ({self.label})" if self.label else ""


def subset_scopes(cfg: CanonicalConfig) -> list[Scope]:
    """One scope per subset; a single command-line scope when the config has no dataset subsets."""
    scopes = [Scope(f"datasets[{di}].subsets[{si}]", ds, sub) for di, si, ds, sub in cfg.iter_subsets()]
    return scopes or [Scope("")]


def dataset_scopes(cfg: CanonicalConfig) -> list[Scope]:
    """One scope per dataset (resolution/bucket keys live there); a command-line scope when there are none."""
    scopes = [Scope(f"datasets[{di}]", ds) for di, ds in enumerate(cfg.datasets)]
    return scopes or [Scope("")]


def has_reg_images(cfg: CanonicalConfig) -> bool:
    """True when some subset is a regularization subset, or a reg folder is configured."""
    if any(sub.get("is_reg", False) for _, _, _, sub in cfg.iter_subsets()):
        return True
    return bool(cfg.get("reg_data_dir"))


# -- value parsing -----------------------------------------------------------------------------------

def as_number(v: Any) -> float | None:
    """A finite number from an int/float/numeric string; None otherwise (bools are not numbers here)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, int):
        try:
            return float(v)
        except OverflowError:   # a 310+ digit integer (valid JSON/TOML) has no float value
            return None
    if isinstance(v, str):
        try:
            f = float(v.strip().rstrip("%"))
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def truthy(v: Any) -> bool:
    """sd-scripts truthiness, also for front-end strings such as ``"True"``/``"false"``."""
    if isinstance(v, str):
        return v.strip().lower() not in ("", "false", "0", "no", "none", "null")
    return bool(v)


def parse_resolution(v: Any) -> tuple[int, int] | None:
    """``"512"``, ``"768,512"``, 512, [768, 512] -> (W, H) the way sd-scripts parses it; None when it cannot."""
    from lora_compat.config.dataset import parse_resolution as sd_parse_resolution

    if isinstance(v, float) and v.is_integer():
        v = int(v)
    res = sd_parse_resolution(v)
    if (isinstance(res, list) and len(res) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in res)):
        return (res[0], res[1])
    return None


def kv_items(v: Any) -> list[tuple[str, str | None]]:
    """``optimizer_args``/``network_args`` as (key, value) pairs; a value of None marks an item without ``=``.

    The split is :func:`lora_compat.semantics.arg_items` (sd-scripts' list of ``"k=v"`` strings, a dict from
    Derrian objects/tables, or one space-separated string), the one splitter of lint, plan and engine.
    """
    from lora_compat.semantics.args import arg_items

    return [(i.key, i.value) for i in arg_items(v)]


def network_arg(cfg: CanonicalConfig, name: str) -> str | None:
    """The value of ``name`` inside ``network_args`` (a string, as sd-scripts passes it), or None."""
    for k, v in kv_items(cfg.get("network_args")):
        if k == name:
            return v
    return None


def first_text_encoder_lr(v: Any) -> float | None:
    """sd-scripts uses only the first value of ``text_encoder_lr`` (a list, or a scalar in a TOML)."""
    if isinstance(v, (list, tuple)):
        return as_number(v[0]) if v else None
    return as_number(v)
