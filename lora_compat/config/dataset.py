"""The dataset config: sd-scripts' ConfigSanitizer checks and BlueprintGenerator resolution.

:func:`check_dataset_config` reproduces the voluptuous validation of a ``--dataset_config`` file
(reference sd-scripts-reference.md §3.1-3.2: allowed keys per level and dataset type, strict
``isinstance`` types, required keys, no DreamBooth/fine-tune mixing) and returns errors with the
voluptuous path (``@ data['datasets'][0]['subsets'][0]['keep_token']``) — never raises.
:func:`resolve_subsets` gives every subset's final parameters exactly as sd-scripts' blueprint
generator does (subset > dataset > general > command line > dataclass default; None counts as unset;
§3.3), matched to golden/dataset_blueprints.json. When no dataset config is given it builds the
datasets sd-scripts derives from the command line (§3.4) via :mod:`lora_compat.config.kohya_folder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from lora_compat.config.model import CanonicalConfig, Dataset, Subset

DREAMBOOTH, FINETUNE, CONTROLNET = "dreambooth", "finetune", "controlnet"

# --- validators (voluptuous isinstance semantics: int accepts bool, float does NOT accept int) -----------
_INT, _FLOAT, _NUM, _BOOL, _STR, _DICT = "int", "float", "float|int", "bool", "str", "dict"
_RESOLUTION, _FLOAT_PAIR = "int|[int,int]", "[float,float]"

REQUIRED = {"S-DB": ("image_dir",), "S-FT": ("metadata_file",), "S-CN": ("image_dir", "conditioning_data_dir")}
KIND_LEVEL = {DREAMBOOTH: "DB", FINETUNE: "FT", CONTROLNET: "CN"}


@cache
def dataset_config_keys() -> dict[str, tuple[str, frozenset[str]]]:
    """key -> (voluptuous validator, allowed levels) from ``schemas/sd-scripts-dataset.schema.json``.

    Levels: ``G`` general, ``D-DB``/``D-FT``/``D-CN`` dataset of that kind, ``S-DB``/``S-FT``/``S-CN`` subset.
    """
    from lora_compat.config import options

    table: dict[str, tuple[str, frozenset[str]]] = {}
    for name in options.dataset_param_names():
        spec = options.dataset_spec(name) or {}
        table[name] = (_validator(name, spec), frozenset(spec.get("x-levels", [])))
    return table


def _validator(name: str, spec: dict[str, Any]) -> str:
    """The voluptuous validator a dataset key has, from its JSON-schema entry."""
    if "oneOf" in spec:
        return _RESOLUTION
    kind = spec.get("type")
    if kind == "array":
        return _FLOAT_PAIR
    if kind == "integer":
        return _INT
    if kind == "number":
        return _FLOAT if spec.get("x-strict-float") else _NUM
    return {"boolean": _BOOL, "string": _STR, "object": _DICT}.get(str(kind), _STR)


# --- blueprint parameters and their dataclass defaults (sd-scripts config_util dataclasses) ---------------
_SUBSET_BASE: dict[str, Any] = {
    "image_dir": None, "num_repeats": 1, "shuffle_caption": False, "caption_separator": ",", "keep_tokens": 0,
    "keep_tokens_separator": "", "secondary_separator": None, "enable_wildcard": False, "color_aug": False,
    "flip_aug": False, "face_crop_aug_range": None, "random_crop": False, "caption_prefix": None,
    "caption_suffix": None, "caption_dropout_rate": 0.0, "caption_dropout_every_n_epochs": 0,
    "caption_tag_dropout_rate": 0.0, "token_warmup_min": 1, "token_warmup_step": 0, "custom_attributes": None,
    "validation_seed": 0, "validation_split": 0.0, "resize_interpolation": None,
}
SUBSET_PARAMS: dict[str, dict[str, Any]] = {
    DREAMBOOTH: {**_SUBSET_BASE, "is_reg": False, "class_tokens": None, "caption_extension": ".caption",
                 "cache_info": False, "alpha_mask": False},
    FINETUNE: {**_SUBSET_BASE, "metadata_file": None, "alpha_mask": False},
    CONTROLNET: {**_SUBSET_BASE, "conditioning_data_dir": None, "caption_extension": ".caption",
                 "cache_info": False},
}
_DATASET_BASE: dict[str, Any] = {
    "resolution": None, "network_multiplier": 1.0, "debug_dataset": False, "validation_seed": None,
    "validation_split": 0.0, "resize_interpolation": None, "batch_size": 1, "enable_bucket": False,
    "min_bucket_reso": 256, "max_bucket_reso": 1024, "bucket_reso_steps": 64, "bucket_no_upscale": False,
}
DATASET_PARAMS: dict[str, dict[str, Any]] = {
    DREAMBOOTH: {**_DATASET_BASE, "prior_loss_weight": 1.0},
    FINETUNE: dict(_DATASET_BASE),
    CONTROLNET: dict(_DATASET_BASE),
}


@dataclass
class DatasetConfigError:
    """One voluptuous-style error: message + key path (ours) + voluptuous path text."""

    message: str
    key_path: str            # "datasets[0].subsets[0].keep_token"
    value: Any = None

    @property
    def voluptuous(self) -> str:
        parts = []
        for piece in _split(self.key_path):
            parts.append(f"[{piece}]" if isinstance(piece, int) else f"['{piece}']")
        return f"{self.message} @ data{''.join(parts)}" if parts else self.message


def _split(path: str) -> list[str | int]:
    from lora_compat.config.document import split_key_path

    return split_key_path(path) if path else []


def _type_ok(validator: str, value: Any) -> bool:
    if validator == _INT:
        return isinstance(value, int)
    if validator == _FLOAT:
        return isinstance(value, float)
    if validator == _NUM:
        return isinstance(value, (int, float))
    if validator == _BOOL:
        return isinstance(value, bool)
    if validator == _STR:
        return isinstance(value, str)
    if validator == _DICT:
        return isinstance(value, dict)
    if validator == _RESOLUTION:
        return isinstance(value, int) or (isinstance(value, (list, tuple)) and len(value) == 2
                                          and all(isinstance(v, int) for v in value))
    if validator == _FLOAT_PAIR:
        return isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, float) for v in value)
    return True


_EXPECTED = {_INT: "expected int", _FLOAT: "expected float (write 1.0, not 1)", _NUM: "expected a number",
             _BOOL: "expected bool", _STR: "expected str", _DICT: "expected a table",
             _RESOLUTION: "expected an int or [width, height]", _FLOAT_PAIR: "expected [float, float]"}


def subset_kind(subsets: list[Any], masked_loss: bool = False) -> str | None:
    """DreamBooth / fine-tune / ControlNet of a dataset from its subsets; None when they are mixed."""
    subs = [s for s in subsets if isinstance(s, dict)]
    if masked_loss and all("conditioning_data_dir" in s for s in subs):
        return CONTROLNET
    if all("metadata_file" in s for s in subs):
        return FINETUNE if subs else CONTROLNET
    if not any("metadata_file" in s for s in subs):
        return DREAMBOOTH
    return None


def check_dataset_config(data: Any, *, masked_loss: bool = False) -> list[DatasetConfigError]:
    """sd-scripts' ConfigSanitizer over a parsed dataset config; every error, not just the first."""
    errors: list[DatasetConfigError] = []
    if not isinstance(data, dict):
        return [DatasetConfigError("expected a table with [general] and [[datasets]]", "")]
    for key, value in data.items():
        if key not in ("general", "datasets"):
            errors.append(DatasetConfigError("extra keys not allowed", key, value))
    general = data.get("general", {})
    if not isinstance(general, dict):
        errors.append(DatasetConfigError("expected a table", "general", general))
    else:
        _check_level(general, "G", "general", errors)
    datasets = data.get("datasets", [])
    if not isinstance(datasets, list):
        errors.append(DatasetConfigError("expected a list of tables", "datasets", datasets))
        return errors
    for di, ds in enumerate(datasets):
        dpath = f"datasets[{di}]"
        if not isinstance(ds, dict):
            errors.append(DatasetConfigError("expected a table", dpath, ds))
            continue
        subsets = ds.get("subsets", [])
        if not isinstance(subsets, list):
            errors.append(DatasetConfigError("expected a list of tables", f"{dpath}.subsets", subsets))
            subsets = []
        kind = subset_kind(subsets, masked_loss)
        if not subsets and not masked_loss:
            kind = FINETUNE  # validate_flex_dataset: all([]) picks the fine-tune schema (the generator later
            #                  classes the same empty dataset as ControlNet; it contributes no images)
        if kind is None:
            errors.append(DatasetConfigError(
                "DreamBooth subset and fine tuning subset cannot be mixed in the same dataset. Please split "
                "them into separate datasets.", dpath))
            continue
        letter = KIND_LEVEL[kind]
        _check_level({k: v for k, v in ds.items() if k != "subsets"}, "D-" + letter, dpath, errors)
        for si, sub in enumerate(subsets):
            spath = f"{dpath}.subsets[{si}]"
            if not isinstance(sub, dict):
                errors.append(DatasetConfigError("expected a table", spath, sub))
                continue
            _check_level(sub, "S-" + letter, spath, errors)
            for req in REQUIRED["S-" + letter]:
                if req not in sub:
                    errors.append(DatasetConfigError("required key not provided", f"{spath}.{req}"))
    return errors


def _check_level(table: dict[str, Any], level: str, path: str, errors: list[DatasetConfigError]) -> None:
    for key, value in table.items():
        kp = f"{path}.{key}"
        rule = dataset_config_keys().get(key)
        if rule is None or level not in rule[1]:
            errors.append(DatasetConfigError("extra keys not allowed", kp, value))
        elif not _type_ok(rule[0], value):
            errors.append(DatasetConfigError(_EXPECTED[rule[0]], kp, value))


# --------------------------------------------------------------------------------------------- resolution
@dataclass
class ResolvedDataset:
    """One dataset as sd-scripts builds it: kind, dataset params, and each subset's final params."""

    kind: str                                   # dreambooth | finetune | controlnet
    params: dict[str, Any] = field(default_factory=dict)
    subsets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_dreambooth(self) -> bool:
        return self.kind == DREAMBOOTH


def parse_resolution(value: Any) -> Any:
    """sd-scripts ``prepare_dataset_args``: ``"768,512"`` -> [768, 512], ``"512"`` / 512 -> [512, 512]."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, (list, tuple)):
        vals = list(value)
        return vals * 2 if len(vals) == 1 else vals
    if isinstance(value, str):
        try:
            parts = [int(p) for p in value.split(",")]
        except ValueError:
            return value
        return parts * 2 if len(parts) == 1 else parts
    return value


def _parse_face_crop(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return [float(p) for p in value.split(",")]
        except ValueError:
            return value
    return list(value) if isinstance(value, tuple) else value


def _argparse_value(cfg: CanonicalConfig, param: str) -> Any:
    """The command-line fallback of a blueprint param (None = unset), after prepare_dataset_args."""
    from lora_compat.config.options import dataset_fallback_option, is_option

    # the argparse attribute searched: same name, except batch_size <- train_batch_size and
    # num_repeats <- dataset_repeats (x-option in the dataset schema)
    name = dataset_fallback_option(param) or param
    if not is_option(name) and name not in cfg.options:
        return None
    value = cfg.effective(name)
    if name == "resolution":
        return parse_resolution(value)
    if name == "face_crop_aug_range":
        return _parse_face_crop(value)
    if name == "caption_extension" and cfg.get("caption_extention") is not None:
        return cfg.get("caption_extention")  # prepare_dataset_args copies the misspelt alias over
    return value


def _lookup(levels: list[dict[str, Any]], param: str) -> Any:
    for level in levels:
        setting = level.get(param)
        if setting is not None:
            value = setting.value if hasattr(setting, "value") else setting
            if value is not None:
                return value
    return None


def resolve_subsets(cfg: CanonicalConfig) -> list[ResolvedDataset]:
    """Every dataset and subset with its final parameters, as sd-scripts' BlueprintGenerator resolves them."""
    datasets = cfg.datasets
    if not datasets:
        from lora_compat.config.kohya_folder import command_line_datasets

        datasets = command_line_datasets(cfg)
    masked = bool(cfg.effective("masked_loss"))
    out: list[ResolvedDataset] = []
    for ds in datasets:
        raw_subsets = [{k: s.value for k, s in sub.params.items()} for sub in ds.subsets]
        kind = subset_kind(raw_subsets, masked) or DREAMBOOTH
        params: dict[str, Any] = {}
        for name, dflt in DATASET_PARAMS[kind].items():
            value = _lookup([ds.params, cfg.general], name)
            if value is None:
                value = _argparse_value(cfg, name)
            params[name] = dflt if value is None else value
        params["resolution"] = parse_resolution(params["resolution"])
        resolved = ResolvedDataset(kind, params)
        for sub in ds.subsets:
            sp: dict[str, Any] = {}
            for name, dflt in SUBSET_PARAMS[kind].items():
                value = _lookup([sub.params, ds.params, cfg.general], name)
                if value is None:
                    value = _argparse_value(cfg, name)
                sp[name] = dflt if value is None else value
            if sp.get("face_crop_aug_range") is not None:
                sp["face_crop_aug_range"] = _parse_face_crop(sp["face_crop_aug_range"])
            resolved.subsets.append(sp)
        out.append(resolved)
    return out


def subset_from_table(table: dict[str, Any]) -> Subset:
    """A :class:`Subset` with plain values (no provenance), for tests and generated datasets."""
    from lora_compat.config.model import Setting

    return Subset({k: Setting(v) for k, v in table.items()})


def dataset_from_table(table: dict[str, Any]) -> Dataset:
    """A :class:`Dataset` (with subsets) from a plain dataset-config table."""
    from lora_compat.config.model import Setting

    subs = table.get("subsets") or []
    return Dataset({k: Setting(v) for k, v in table.items() if k != "subsets"},
                   [subset_from_table(s) for s in subs if isinstance(s, dict)])
