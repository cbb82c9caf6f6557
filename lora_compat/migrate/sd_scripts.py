"""Canonical config -> sd-scripts ``--config_file`` TOML (+ ``--dataset_config`` TOML when there are datasets).

The config file is flat (sd-scripts flattens one level anyway) and holds the values exactly as sd-scripts
uses them after parsing, because TOML values get no argparse conversion (reference §2.3): ``resolution`` a
string, ``network_args`` / ``optimizer_args`` / ``lr_scheduler_args`` / ``base_weights`` arrays of strings,
``lr_warmup_steps`` int = steps, float = ratio. The dataset config follows sd-scripts' strict voluptuous
schema (reference §3.2): floats where it wants floats, no unknown key at any level.
"""

from __future__ import annotations

from typing import Any

from lora_compat.config import options
from lora_compat.config.model import CanonicalConfig, Setting
from lora_compat.config.secrets import is_secret_key
from lora_compat.migrate.report import DROPPED, NO_EQUIVALENT, MigrationReport, lost, written
from lora_compat.migrate.toml_out import compact_arrays, dumps_datasets, toml_value_ok

# options that make no sense inside a --config_file
CONFIG_ONLY = {
    "config_file": "the config file cannot name itself; pass --config_file on the command line",
    "output_config": "would make sd-scripts write a config and exit instead of training",
}
_ARRAYS_OF_STRINGS = ("network_args", "optimizer_args", "lr_scheduler_args", "base_weights")
# dataset-config keys voluptuous validates as strict float (an int is rejected)
_STRICT_FLOAT = ("validation_split", "network_multiplier")


MIXED_ARRAY_WHY = "the toml 0.10.2 package sd-scripts reads with rejects arrays mixing ints and floats"


def uniform_numbers(value: Any) -> Any:
    """A list mixing ints and floats as all floats (same numbers); any other value is returned as is."""
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in value) and len({type(v) for v in value}) > 1:
        return [float(v) for v in value]
    return value


def script_for(cfg: CanonicalConfig) -> str:
    """The sd-scripts training script the config is for: its model family's LoRA script."""
    from lora_compat.arch.families import FAMILIES

    fam = FAMILIES.get(cfg.family or "")
    if fam is not None and fam.script:
        return fam.script
    return "sdxl_train_network.py" if cfg.is_sdxl else "train_network.py"


def folder_mode(cfg: CanonicalConfig) -> bool:
    """True when the datasets come from the kohya folder convention (``train_data_dir`` without a dataset
    config): sd-scripts derives them again from the folders, so no dataset config is written."""
    return bool(cfg.get("train_data_dir")) and not cfg.get("dataset_config")


def _resolution_string(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"{value},{value}"
    if isinstance(value, (list, tuple)) and len(value) in (1, 2) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    return None


def _emit(out: dict[str, Any], key: str, where: str, setting: Setting, value: Any, conversion: str | None,
          report: MigrationReport) -> None:
    """Write ``value`` under ``key`` as sd-scripts' toml 0.10.2 can read it, or report why it cannot be written.
    ``where`` names it in the report (the option, or the dataset-config path)."""
    uniform = uniform_numbers(value)
    if uniform is not value:
        conversion, value = f"{key} {value!r} -> {uniform!r} ({MIXED_ARRAY_WHY})", uniform
    if not toml_value_ok(value):
        report.add(lost(where, setting.prov, NO_EQUIVALENT, "the value cannot be written in TOML", repr(value)))
        return
    out[key] = value
    report.add(written(where, setting.prov, where, value, conversion=conversion))


def to_config_file(cfg: CanonicalConfig, report: MigrationReport, dataset_path: str | None) -> dict[str, Any]:
    """The flat ``--config_file`` mapping; ``dataset_path`` is the dataset TOML written beside it (or None)."""
    out: dict[str, Any] = {}
    for name, setting in cfg.options.items():
        spec = options.spec(name)
        value = setting.value
        if name in CONFIG_ONLY:
            report.add(lost(name, setting.prov, DROPPED, CONFIG_ONLY[name], value, loss=False))
            continue
        if is_secret_key(name):
            report.add(lost(name, setting.prov, DROPPED, "credential: never written by lora-compat", value,
                            loss=False))
            continue
        if spec is None:
            report.add(lost(name, setting.prov, NO_EQUIVALENT, "not an sd-scripts option"
                            + (" (a PEFT-only field of the native config)" if name.startswith("peft.") else ""),
                            value))
            continue
        if spec.get("x-pseudo"):
            report.add(written(name, setting.prov, f"(script) {script_for(cfg)}", value,
                               conversion=f"{name} = {value!r} -> run {script_for(cfg)}"))
            continue
        if value is None:
            report.add(lost(name, setting.prov, DROPPED, "null (unset): sd-scripts' default applies", None,
                            loss=False))
            continue
        if name == "dataset_config" and dataset_path is not None:
            continue  # replaced below by the migrated dataset config
        conversion = None
        if name in ("resolution",) and not isinstance(value, str):
            text = _resolution_string(value)
            if text is None:
                report.add(lost(name, setting.prov, NO_EQUIVALENT, f"{value!r} is not a resolution", value))
                continue
            conversion, value = f"resolution {value!r} -> \"{text}\" (sd-scripts splits a string)", text
        if name == "face_crop_aug_range" and isinstance(value, (list, tuple)):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                report.add(lost(name, setting.prov, NO_EQUIVALENT, f"{value!r} is not two numbers", value))
                continue
            text = ",".join(str(float(v)) for v in value)
            conversion, value = f"face_crop_aug_range {value!r} -> \"{text}\"", text
        if name in _ARRAYS_OF_STRINGS:
            if isinstance(value, str):
                conversion, value = f"{name} string -> list (a bare string is iterated per character)", \
                    value.split()
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                report.add(lost(name, setting.prov, NO_EQUIVALENT, "must be an array of strings", value))
                continue
        if name in _STRICT_FLOAT and isinstance(value, int) and not isinstance(value, bool):
            # voluptuous re-checks dataset keys in the argparse namespace (reference §2.3)
            conversion, value = f"{name} {value} -> {float(value)} (voluptuous rejects an int here)", float(value)
        _emit(out, name, name, setting, value, conversion, report)
    if dataset_path is not None:
        old = cfg.options.get("dataset_config")
        out["dataset_config"] = dataset_path
        report.add(written("dataset_config", old.prov if old else None, "dataset_config", dataset_path,
                           conversion="dataset_config -> the migrated dataset config written beside the config"))
    return out


def to_dataset_config(cfg: CanonicalConfig, report: MigrationReport) -> dict[str, Any]:
    """The ``--dataset_config`` mapping (``[general]``, ``[[datasets]]``, ``[[datasets.subsets]]``)."""
    doc: dict[str, Any] = {}
    if cfg.general:
        doc["general"] = _level(cfg.general, "general", report)
    datasets = []
    for di, ds in enumerate(cfg.datasets):
        body = _level(ds.params, f"datasets[{di}]", report)
        body["subsets"] = [_level(s.params, f"datasets[{di}].subsets[{si}]", report)
                           for si, s in enumerate(ds.subsets)]
        datasets.append(body)
    doc["datasets"] = datasets
    return doc


def _level(params: dict[str, Setting], path: str, report: MigrationReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, s in params.items():
        value = s.value
        where = f"{path}.{key}"
        if value is None:
            report.add(lost(where, s.prov, DROPPED, "null (unset): the next level applies", None, loss=False))
            continue
        conversion = None
        if key in _STRICT_FLOAT and isinstance(value, int) and not isinstance(value, bool):
            conversion, value = f"{key} {value} -> {float(value)} (voluptuous rejects an int here)", float(value)
        if key == "face_crop_aug_range" and isinstance(value, (list, tuple)) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            new = [float(v) for v in value]
            if new != list(value) or any(isinstance(v, int) for v in value):
                conversion = f"face_crop_aug_range {value!r} -> {new!r} (floats required)"
            value = new
        if key == "resolution" and isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            if all(p.isdecimal() for p in parts) and len(parts) in (1, 2):
                new_res: Any = int(parts[0]) if len(parts) == 1 else [int(p) for p in parts]
                conversion, value = f'resolution "{value}" -> {new_res!r}', new_res
        _emit(out, key, where, s, value, conversion, report)
    return out


def dumps_sd_scripts(cfg: CanonicalConfig, report: MigrationReport, dataset_path: str | None) -> tuple[str, str | None]:
    """(config TOML text, dataset TOML text or None). ``dataset_path`` is where the dataset TOML will be."""
    import tomli_w

    write_datasets = needs_dataset_config(cfg)
    if not write_datasets:
        dataset_path = None
        report_folder_datasets(cfg, report)
    body = to_config_file(cfg, report, dataset_path)
    header = (f"# sd-scripts --config_file written by lora-compat from {cfg.source} ({cfg.dialect})\n"
              f"# run: accelerate launch {script_for(cfg)} --config_file <this file>\n"
              f"# lora-compat: script = \"{script_for(cfg)}\"\n")
    config_text = header + compact_arrays(tomli_w.dumps(body))
    dataset_text = dumps_dataset_config(cfg, report) if write_datasets else None
    return config_text, dataset_text


def report_folder_datasets(cfg: CanonicalConfig, report: MigrationReport) -> None:
    """Report lines for datasets read from the kohya folder convention: not written, sd-scripts derives them
    again from ``train_data_dir`` (targets without a dataset config of their own)."""
    for di, ds in enumerate(cfg.datasets):
        for si, sub in enumerate(ds.subsets):
            for key, s in sub.params.items():
                report.add(written(f"datasets[{di}].subsets[{si}].{key}", s.prov, "train_data_dir", s.value,
                                   conversion="from the kohya folder convention; sd-scripts derives it again "
                                   "from train_data_dir"))


def needs_dataset_config(cfg: CanonicalConfig) -> bool:
    """True when the migrated config needs its own dataset TOML (datasets not from the kohya folders)."""
    return bool(cfg.datasets or cfg.general) and not folder_mode(cfg)


def dumps_dataset_config(cfg: CanonicalConfig, report: MigrationReport) -> str:
    """The ``--dataset_config`` TOML text of ``cfg``'s datasets."""
    doc = to_dataset_config(cfg, report)
    return (f"# sd-scripts --dataset_config written by lora-compat from {cfg.source}\n"
            + dumps_datasets(doc.get("general"), doc.get("datasets")))
