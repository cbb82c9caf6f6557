"""``ss_*`` and ``modelspec.*`` metadata of a run, as sd-scripts writes it into a LoRA ``.safetensors`` (§7).

The plan holds every value the options decide (:mod:`lora_compat.plan.metadata`); this module adds what only
the run knows (counts, seed, session id, clock, hashes, the dataset description) and the per-save keys. Every
value is ``str()``-converted like sd-scripts does. Secrets (API keys, tokens) are never written: only the
listed keys are emitted.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunFacts:
    """What only the running engine knows: counts for its number of processes, the seed it used, the
    optimizer class it imported, the session id and start time, and the dataset description."""

    num_train_images: int
    num_reg_images: int
    num_batches_per_epoch: int
    num_epochs: int
    max_train_steps: int
    total_batch_size: int
    seed: int
    ss_optimizer: str
    session_id: int
    training_started_at: float
    dataset_dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    tag_frequency: dict[str, dict[str, int]] = field(default_factory=dict)
    datasets_json: str | None = None           # ss_datasets (dataset-config mode), else None
    reg_dataset_dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    bucket_info: dict[str, Any] | None = None  # ss_bucket_info (command-line mode); None: bucketing off


def new_session_id() -> int:
    """``ss_session_id``: sd-scripts draws it before seeding, so every run gets its own (not from the seed)."""
    return random.SystemRandom().randint(0, 2 ** 32)


def _s(value: Any) -> str:
    return str(value)


#: Where A1111's old model hash looks (sd-scripts' ``model_hash`` of a base model, ``sshs_legacy_hash`` of a LoRA).
LEGACY_HASH_WINDOW = slice(0x100000, 0x110000)


def legacy_hash(window: bytes) -> str:
    """A1111's old hash of the bytes at :data:`LEGACY_HASH_WINDOW`: SHA-256, first 8 hex digits."""
    return hashlib.sha256(window).hexdigest()[:8]


def _file_hashes(path: str) -> tuple[str, str]:
    """sd-scripts' ``(model_hash, calculate_sha256)`` of a base model path: :func:`legacy_hash` and the full
    SHA-256; "IsADirectory" for a folder, "NOFILE" when it vanished."""
    w = LEGACY_HASH_WINDOW
    try:
        with open(path, "rb") as fh:
            fh.seek(w.start)
            legacy = legacy_hash(fh.read(w.stop - w.start))
            fh.seek(0)
            full = hashlib.sha256()
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                full.update(chunk)
        return legacy, full.hexdigest()
    except FileNotFoundError:
        return "NOFILE", "NOFILE"
    except (IsADirectoryError, PermissionError):  # PermissionError: what Windows raises for a folder
        return "IsADirectory", "IsADirectory"


def training_metadata(planned: dict[str, str | None], facts: RunFacts, base_model: str | None) -> dict[str, str]:
    """The run-constant ``ss_*`` keys: the plan's values (:func:`lora_compat.plan.metadata.option_metadata`,
    already typed as sd-scripts writes them) with what only the run knows filled in (§7.1)."""
    run: dict[str, Any] = {
        "ss_session_id": facts.session_id,
        "ss_training_started_at": facts.training_started_at,
        "ss_num_train_images": facts.num_train_images,
        "ss_num_reg_images": facts.num_reg_images,
        "ss_num_batches_per_epoch": facts.num_batches_per_epoch,
        "ss_num_epochs": facts.num_epochs,
        "ss_max_train_steps": facts.max_train_steps,
        "ss_seed": facts.seed,
        "ss_optimizer": facts.ss_optimizer,
        "ss_total_batch_size": facts.total_batch_size,
        "ss_tag_frequency": json.dumps(facts.tag_frequency),
        "ss_dataset_dirs": json.dumps(facts.dataset_dirs),
    }
    if "ss_datasets" in planned:
        run["ss_datasets"] = facts.datasets_json
    else:
        run["ss_reg_dataset_dirs"] = json.dumps(facts.reg_dataset_dirs)
        run["ss_bucket_info"] = json.dumps(facts.bucket_info)
    if "ss_sd_model_hash" in planned and base_model:
        # sd-scripts hashes an existing base model path (file: both hashes; folder: "IsADirectory")
        run["ss_sd_model_hash"], run["ss_new_sd_model_hash"] = _file_hashes(str(base_model))
    md = {k: (v if v is not None else run.get(k)) for k, v in planned.items()}
    return {k: _s(v) for k, v in md.items()}


SUBSET_KEYS = ("num_repeats", "color_aug", "flip_aug", "random_crop", "shuffle_caption", "keep_tokens",
               "keep_tokens_separator", "secondary_separator", "enable_wildcard", "caption_prefix", "caption_suffix",
               "resize_interpolation")


def describe_datasets(train_dataset: Any) -> tuple[str, dict[str, dict[str, int]], dict[str, Any] | None]:
    """(``ss_datasets`` JSON, reg dataset dirs, command-line ``ss_bucket_info``) of the engine's dataset."""
    datasets = []
    reg_dirs: dict[str, dict[str, int]] = {}
    for ds in train_dataset.datasets:
        dreambooth = ds.kind == "dreambooth"
        subsets = []
        for sub in ds.subsets:
            entry: dict[str, Any] = {"img_count": sub.img_count}
            entry.update({k: sub.get(k) for k in SUBSET_KEYS})
            folder = sub.get("image_dir")
            entry["image_dir"] = os.path.basename(os.path.normpath(str(folder))) if folder else None
            if dreambooth:
                entry["class_tokens"] = sub.get("class_tokens")
                entry["is_reg"] = sub.is_reg
                if sub.is_reg and folder:
                    reg_dirs[entry["image_dir"]] = {"n_repeats": int(sub.get("num_repeats")),
                                                    "img_count": sub.img_count}
            else:
                mf = sub.get("metadata_file")
                entry["metadata_file"] = os.path.basename(str(mf)) if mf else None
            subsets.append(entry)
        datasets.append({
            "is_dreambooth": dreambooth, "batch_size_per_device": ds.batch_size,
            "num_train_images": ds.num_train_images, "num_reg_images": ds.num_reg_images,
            "resolution": [ds.width, ds.height], "enable_bucket": ds.enable_bucket,
            "min_bucket_reso": ds.params.get("min_bucket_reso"), "max_bucket_reso": ds.params.get("max_bucket_reso"),
            "tag_frequency": ds.tag_frequency, "bucket_info": ds.bucket_info,
            "resize_interpolation": ds.params.get("resize_interpolation"), "subsets": subsets})
    first = train_dataset.datasets[0] if train_dataset.datasets else None
    bucket_info = first.bucket_info if first is not None and first.enable_bucket else None
    return json.dumps(datasets), reg_dirs, bucket_info


def modelspec(planned: dict[str, str | None]) -> dict[str, str]:
    """``modelspec.*`` keys (§7.3) of one save: the plan's, with this save's date (and a title from it)."""
    now = datetime.datetime.now().replace(microsecond=0)
    md = dict(planned)
    md["modelspec.date"] = now.isoformat()
    if md.get("modelspec.title") is None:
        md["modelspec.title"] = f"LoRA@{now.isoformat()}"
    return {k: v for k, v in md.items() if v is not None}


def save_metadata(base: dict[str, str], spec: dict[str, str], epoch: int, steps: int,
                  no_metadata: bool = False) -> dict[str, str]:
    """The metadata of one save: run keys + save-time keys (§7.1 'written at every save') + modelspec."""
    md = dict(base)
    md["ss_training_finished_at"] = str(time.time())
    md["ss_steps"] = str(steps)
    md["ss_epoch"] = str(epoch)
    if no_metadata:
        keep = ("ss_v2", "ss_base_model_version", "ss_network_module", "ss_network_dim", "ss_network_alpha",
                "ss_network_args")
        md = {k: v for k, v in md.items() if k in keep}
    md.update(spec)
    return md
