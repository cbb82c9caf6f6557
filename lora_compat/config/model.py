"""The canonical option model: sd-scripts' own argument space, every value with its provenance.

Every reader (dialect) produces a :class:`CanonicalConfig`; every consumer (lint, migrate, plan, train)
reads only this. Option names are sd-scripts' long option names (``network_dim``, ``shuffle_caption``,
``lr_warmup_steps``); dataset parameters use sd-scripts' dataset-config key names
(``num_repeats``, ``image_dir``, ``class_tokens`` ...). Types, defaults and meanings live in
``schemas/sd-scripts.schema.json`` and ``schemas/sd-scripts-dataset.schema.json`` (see
:mod:`lora_compat.config.options`), never here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Provenance kinds, used by show/migrate reports and lint.
KEPT = "kept"                # same key, same value
RENAMED = "renamed"          # different key, same value
CONVERTED = "converted"      # value changed (unit, type, string->number, split string ...)
DERIVED = "derived"          # computed from other keys (GUI epoch -> max_train_steps ...)
DEFAULT = "default"          # filled from a front-end default the legacy tool would have passed
FRONTEND = "frontend-quirk"  # the legacy front-end silently changed/dropped what the user wrote
PROVENANCE_KINDS = (KEPT, RENAMED, CONVERTED, DERIVED, DEFAULT, FRONTEND)


@dataclass(frozen=True)
class Origin:
    """Where a value was written: file, key path as written there, and position (1-based)."""

    file: str
    key: str                   # key path as written, e.g. "lr_warmup", "optimizer_args.args.warmup_ratio",
                               # "datasets[0].subsets[1].num_repeats", or "--network_dim" for command lines
    line: int | None = None
    col: int | None = None
    raw: Any = None            # the value exactly as written (before conversion)


@dataclass
class Provenance:
    """How a canonical value was obtained."""

    kind: str = KEPT                          # one of PROVENANCE_KINDS
    origins: tuple[Origin, ...] = ()          # usually one; several for derived values
    conversion: str | None = None             # human text: 'lr_warmup "10" (percent) -> lr_warmup_steps 0.1 (ratio)'

    @property
    def origin(self) -> Origin | None:
        return self.origins[0] if self.origins else None

    def to_json(self) -> dict[str, Any]:
        o = self.origin
        return {
            "kind": self.kind,
            "file": o.file if o else None,
            "key": o.key if o else None,
            "line": o.line if o else None,
            "raw": o.raw if o else None,
            "conversion": self.conversion,
            "sources": [{"file": x.file, "key": x.key, "line": x.line} for x in self.origins[1:]],
        }


@dataclass
class Setting:
    """One canonical value and where it came from."""

    value: Any
    prov: Provenance = field(default_factory=Provenance)


@dataclass
class UnknownKey:
    """A key the reader could not map. Kept (never dropped silently) and reported."""

    key: str
    value: Any
    origin: Origin
    reason: str = "not a known key of this dialect"


@dataclass
class FrontendOnlyKey:
    """A key that is known but only meant something to the front-end (GUI state, paths of the GUI ...)."""

    key: str
    value: Any
    origin: Origin
    reason: str


@dataclass
class InvalidValue:
    """A value that could not be converted to its option's type/range (e.g. ``"network_dim": "abc"``).

    ``show``/``migrate``/``train`` refuse a config with invalid values (UserError naming file, key, line);
    ``lint`` reports them as findings instead.
    """

    option: str          # canonical option (or dataset param) name
    value: Any           # the raw value
    origin: Origin
    reason: str          # e.g. "expected an integer"


@dataclass
class Note:
    """A fact about how the legacy front-end really ran this file, for lint to explain.

    ``code`` is a stable kebab-case id (e.g. ``derrian-a1-drops-gradient-acc``), ``origin`` the key it is about.
    """

    code: str
    message: str
    origin: Origin | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Subset:
    """A dataset-config subset: ``{param: Setting}`` with sd-scripts dataset key names."""

    params: dict[str, Setting] = field(default_factory=dict)
    origin: Origin | None = None

    def get(self, name: str, default: Any = None) -> Any:
        s = self.params.get(name)
        return default if s is None else s.value


@dataclass
class Dataset:
    """A dataset-config ``[[datasets]]`` entry with its subsets."""

    params: dict[str, Setting] = field(default_factory=dict)
    subsets: list[Subset] = field(default_factory=list)
    origin: Origin | None = None

    def get(self, name: str, default: Any = None) -> Any:
        s = self.params.get(name)
        return default if s is None else s.value


@dataclass
class CanonicalConfig:
    """A training config in sd-scripts' argument space.

    ``options`` holds the options the file set (explicitly or through a front-end default/derivation);
    options not present take sd-scripts' default (see :func:`lora_compat.config.options.default`).
    ``general`` / ``datasets`` are the dataset config (``--dataset_config`` levels). When the legacy
    format used a kohya folder (``train_data_dir`` with ``N_name`` subfolders) the reader turns it into
    datasets/subsets and records that in provenance.
    """

    dialect: str                      # see lora_compat.config.dialects.DIALECTS
    source: str                       # path of the main file
    era: str | None = None            # K0..K5, A1, A2, XTI, U1, U2, or None
    tab: str | None = None            # kohya_ss GUI tab: lora, dreambooth, finetune, ti, ...
    options: dict[str, Setting] = field(default_factory=dict)
    general: dict[str, Setting] = field(default_factory=dict)
    datasets: list[Dataset] = field(default_factory=list)
    unknown_keys: list[UnknownKey] = field(default_factory=list)
    frontend_only: list[FrontendOnlyKey] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    invalid: list[InvalidValue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)   # every file read (config + dataset config ...)
    # The model family (lora_compat.arch.families id), decided once by the spine (config/family.py) and carried
    # like provenance: why (family_source, e.g. "script flux_train_network.py (command line line 3)") and where.
    family: str | None = None
    family_source: str | None = None
    family_origin: Origin | None = None
    family_markers: list[Any] = field(default_factory=list, repr=False)  # the document's markers (re-deciding)
    # source keys read that set no option, and why (a zero the front-end does not pass, a null it ignores; "" for a
    # structural key such as a format marker): the migration report accounts for them, lint does not
    consumed: list[tuple[Origin, str]] = field(default_factory=list)
    document: Any = field(default=None, repr=False, compare=False)   # the parsed main file (load_config sets it)

    # -- access -----------------------------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> Any:
        """The value of option ``name`` as set by the file, else ``default`` (NOT the sd-scripts default)."""
        s = self.options.get(name)
        return default if s is None else s.value

    def is_set(self, name: str) -> bool:
        return name in self.options

    def effective(self, name: str) -> Any:
        """The value sd-scripts would use: the file's, else the default of this config's family's script from the
        schema (``discrete_flow_shift`` 3.0 for FLUX.1; None for an option the family's script does not have)."""
        if name in self.options:
            return self.options[name].value
        from lora_compat.config.options import default  # local: options loads the schema lazily

        return default(name, self.family)

    def set(self, name: str, value: Any, prov: Provenance | None = None) -> None:
        self.options[name] = Setting(value, prov or Provenance())

    def iter_subsets(self) -> Iterator[tuple[int, int, Dataset, Subset]]:
        for di, ds in enumerate(self.datasets):
            for si, sub in enumerate(ds.subsets):
                yield di, si, ds, sub

    def subset_value(self, ds: Dataset, sub: Subset, name: str, default: Any = None) -> Any:
        """Resolve a dataset parameter: subset > dataset > general > command-line option > default."""
        for level in (sub.params, ds.params, self.general):
            if name in level:
                return level[name].value
        if name in self.options:
            return self.options[name].value
        return default

    @property
    def is_sdxl(self) -> bool:
        """SDXL: the decided family (script, checkbox, base model ...); before detection the reader's sdxl flag."""
        if self.family is not None:
            return self.family == "sdxl"
        return bool(self.get("sdxl", False))

    @property
    def is_v2(self) -> bool:
        """SD2.x: the decided family; before detection the ``v2`` option."""
        if self.family is not None:
            return self.family == "sd2"
        return bool(self.get("v2", False))

    @property
    def is_sd_family(self) -> bool:
        """True for SD1/SD2/SDXL (and for a config whose family is not decided: a dataset config)."""
        from lora_compat.arch.families import SD_FAMILIES

        return self.family is None or self.family in SD_FAMILIES

    def arch(self) -> str:
        """``sdxl``, ``sd2`` or ``sd1`` for the SD code paths.

        Raises :class:`~lora_compat.errors.UnsupportedFamilyError` for any other family (FLUX.1, SD3 ...): a non-SD
        config must never flow into SD code as if it were SD1.
        """
        if self.family is not None:
            from lora_compat.arch.families import SD_FAMILIES, family

            if self.family in SD_FAMILIES:
                return self.family
            from lora_compat.errors import UnsupportedFamilyError

            raise UnsupportedFamilyError(f"{family(self.family).label} is not an SD1/SD2/SDXL model; the SD code paths "
                                    f"cannot handle it (family from {self.family_source})", family=self.family,
                                    file=self.source)
        return "sdxl" if self.get("sdxl", False) else ("sd2" if self.get("v2", False) else "sd1")

    def locate(self, name: str) -> Origin | None:
        s = self.options.get(name)
        return s.prov.origin if s else None
