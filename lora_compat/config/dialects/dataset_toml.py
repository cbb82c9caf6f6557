"""sd-scripts ``--dataset_config`` files (TOML, or JSON as sd-scripts also accepts) -> general/datasets.

Used on its own (dialect ``sd-scripts-dataset``) and by every reader whose config references a dataset
config (``dataset_config`` key / ``--dataset_config``): :func:`load_dataset_reference`.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from lora_compat.config.dataset import check_dataset_config
from lora_compat.config.document import Document, join_key
from lora_compat.config.model import (
    DERIVED,
    KEPT,
    CanonicalConfig,
    Dataset,
    InvalidValue,
    Note,
    Origin,
    Provenance,
    Setting,
    Subset,
)
from lora_compat.errors import UserError, Where

if TYPE_CHECKING:
    from lora_compat.config.detection import Detection


def read(doc: Document, detection: Detection) -> CanonicalConfig:
    """A dataset config on its own: general/datasets filled, no training options."""
    cfg = CanonicalConfig(dialect="sd-scripts-dataset", source=doc.path, era=detection.era, files=[doc.path])
    apply_dataset_document(cfg, doc, masked_loss=None)
    return cfg


def apply_dataset_document(cfg: CanonicalConfig, doc: Document, *, masked_loss: bool | None = False) -> None:
    """Put the dataset config of ``doc`` into ``cfg.general``/``cfg.datasets``; rule violations -> cfg.invalid.

    ``masked_loss``: the training config's ``--masked_loss`` (ControlNet/mask subsets are legal only with it);
    None for a dataset config read on its own: mask subsets are accepted and a Note says they need it.
    """
    data = doc.data if isinstance(doc.data, dict) else {}
    if doc.path not in cfg.files:
        cfg.files.append(doc.path)

    def setting(path: str, value: Any) -> Setting:
        return Setting(value, Provenance(KEPT, (doc.origin(path, value),)))

    general = data.get("general")
    if isinstance(general, dict):
        cfg.general = {k: setting(join_key("general", k), v) for k, v in general.items()}
    datasets = data.get("datasets")
    cfg.datasets = []
    if isinstance(datasets, list):
        for di, ds in enumerate(datasets):
            if not isinstance(ds, dict):
                continue
            dpath = f"datasets[{di}]"
            dataset = Dataset({k: setting(join_key(dpath, k), v) for k, v in ds.items() if k != "subsets"},
                              origin=doc.origin(dpath, None))
            subsets = ds.get("subsets")
            if isinstance(subsets, list):
                for si, sub in enumerate(subsets):
                    if not isinstance(sub, dict):
                        continue
                    spath = f"{dpath}.subsets[{si}]"
                    dataset.subsets.append(Subset({k: setting(join_key(spath, k), v) for k, v in sub.items()},
                                                  origin=doc.origin(spath, None)))
            cfg.datasets.append(dataset)
    masked = bool(cfg.get("masked_loss", False)) if masked_loss is not None else False
    errors = check_dataset_config(data, masked_loss=masked)
    if masked_loss is None and errors:
        with_mask = check_dataset_config(data, masked_loss=True)
        if len(with_mask) < len(errors):
            errors = with_mask
            origin = doc.origin("datasets", None)
            cfg.notes.append(Note("dataset-needs-masked-loss",
                                  "subsets with conditioning_data_dir (mask/ControlNet datasets) are accepted by "
                                  "sd-scripts only together with --masked_loss", origin))
            # the only way sd-scripts reads this dataset config: carried, so a migrated --config_file says it too
            cfg.options["masked_loss"] = Setting(True, Provenance(DERIVED, (origin,), (
                "subsets with conditioning_data_dir -> masked_loss true (sd-scripts refuses them without it)")))
    record_dataset_errors(cfg, doc, errors)


def record_dataset_errors(cfg: CanonicalConfig, doc: Document, errors: list[Any]) -> None:
    """What sd-scripts' dataset-config schema refuses, as invalid values at their keys (every reader that holds
    dataset levels: a --dataset_config file, the native config's [general]/[[datasets]])."""
    for err in errors:
        origin = doc.origin(err.key_path, err.value)
        name = err.key_path.rsplit(".", 1)[-1] if err.key_path else "dataset_config"
        cfg.invalid.append(InvalidValue(name, err.value, origin,
                                        f"{err.message}; sd-scripts refuses the dataset config "
                                        f"({err.voluptuous})"))


def dataset_path(value: str, base_dir: str | None) -> tuple[str, bool]:
    """Where a referenced dataset config lives, and whether it was found only by its file name.

    Tried in order: as written (sd-scripts resolves against its working directory), relative to the
    config's folder, then the bare file name next to the config (configs are usually copied around
    together with their dataset TOML, e.g. the kohya_ss test configs point at ``./test/config/x.toml``).
    """
    if os.path.exists(value) or not base_dir:
        return value, False
    if not os.path.isabs(value):
        cand = os.path.normpath(os.path.join(base_dir, value))
        if os.path.exists(cand):
            return cand, False
    name = re.split(r"[\\/]", value)[-1]
    cand = os.path.join(base_dir, name)
    if name and os.path.isfile(cand):
        return cand, True
    return value, False


def load_dataset_reference(cfg: CanonicalConfig, value: Any, origin: Origin | None, *,
                           base_dir: str | None, required: bool = True) -> bool:
    """Load the dataset config a training config points to into ``cfg``.

    Missing file: UserError when ``required`` (train), else a Note ``dataset-config-missing`` (show, lint,
    migrate, plan: the datasets are unknown). A name sd-scripts refuses (not .toml/.json) is an invalid value.
    Returns whether a file was loaded.
    """
    from lora_compat.config.loaders import parse_json, parse_toml, read_text

    if not isinstance(value, str) or not value.strip():
        return False
    path, by_name = dataset_path(value, base_dir)
    where: Where = {"file": origin.file if origin else cfg.source, "line": origin.line if origin else None,
                    "key": origin.key if origin else "dataset_config"}
    if not os.path.isfile(path) and path.lower().endswith((".toml", ".json")):
        if required:
            raise UserError(f"dataset config {value!r} not found (looked relative to the working directory "
                            "and to this config's folder)", **where)
        cfg.notes.append(Note("dataset-config-missing", f"dataset config {value!r} is not on this machine: its "
                              "datasets (image folders, repeats, resolution ...) are unknown", origin,
                              {"path": value}))
        return False
    if by_name:
        cfg.notes.append(Note("dataset-config-found-by-name",
                              f"dataset config {value!r} does not exist as written; using {path!r} found by its "
                              "file name next to this config", origin, {"path": value, "used": path}))
    low = path.lower()
    if low.endswith(".json"):
        doc = parse_json(path, read_text(path))
    elif low.endswith(".toml"):
        doc = parse_toml(path, read_text(path))
    else:
        # sd-scripts' load_user_config raises ValueError for any other suffix: an invalid value, whatever is on
        # this machine; the file is never read (it may be any file: /etc/passwd, a model)
        where_ = origin or Origin(cfg.source, "dataset_config")
        cfg.invalid.append(InvalidValue("dataset_config", value, where_,
                                        f"dataset config {value!r} must end in .toml or .json (sd-scripts "
                                        "refuses others)"))
        cfg.notes.append(Note("dataset-config-bad-suffix", "sd-scripts reads only .toml/.json dataset configs",
                              where_, {"path": value}))   # lint's specific rule explains it
        return False
    if not isinstance(doc.data, dict):
        raise UserError("dataset config must be a table with [general] and [[datasets]]", file=path)
    apply_dataset_document(cfg, doc, masked_loss=False)
    return True
