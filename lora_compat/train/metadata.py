"""``ss_*`` and ``modelspec.*`` metadata as sd-scripts writes it into a LoRA ``.safetensors`` (reference §7).

Every value is ``str()``-converted like sd-scripts does (bools "True"/"False", None "None", tuples as repr).
Secrets (API keys, tokens) are never written: only the listed keys are emitted.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

NETWORK_MODULE = "networks.lora"
LYCORIS_MODULE = "lycoris.kohya"  # what sd-scripts records for LyCORIS networks (LoHa, LoKr)


@dataclass
class RunFacts:
    """Facts only the running engine knows (counts, effective values)."""

    arch: str
    v_parameterization: bool
    num_train_images: int
    num_reg_images: int
    num_batches_per_epoch: int
    num_epochs: int
    max_train_steps: int
    num_processes: int
    optimizer: str
    seed: int
    lr_scheduler: str
    learning_rate: float | None
    unet_lr: float | None
    text_encoder_lr: float | None
    dataset_dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    tag_frequency: dict[str, dict[str, int]] = field(default_factory=dict)
    datasets_json: str | None = None           # ss_datasets (dataset-config mode), else None
    reg_dataset_dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    bucket_info: dict[str, Any] | None = None  # ss_bucket_info (command-line mode); None: bucketing off
    training_started_at: float = field(default_factory=time.time)
    session_id: int = field(default_factory=lambda: random.randint(0, 2 ** 32))


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


def base_model_version(arch: str, v: bool) -> str:
    """``ss_base_model_version``: sd_v1, sd_v1_v, sd_v2, sd_v2_v or sdxl_base_v1-0."""
    if arch == "sdxl":
        return "sdxl_base_v1-0"
    return ("sd_v2" if arch == "sd2" else "sd_v1") + ("_v" if v else "")


def training_metadata(get: Callable[[str], Any], facts: RunFacts) -> dict[str, str]:
    """The run-constant ``ss_*`` keys (§7.1), from option getter ``get`` (CanonicalConfig.effective)."""
    model = get("pretrained_model_name_or_path")
    grad_acc = int(get("gradient_accumulation_steps") or 1)
    batch = int(get("train_batch_size") or 1)
    md: dict[str, Any] = {
        "ss_session_id": facts.session_id,
        "ss_training_started_at": facts.training_started_at,
        "ss_output_name": get("output_name"),
        "ss_learning_rate": facts.learning_rate,
        "ss_text_encoder_lr": facts.text_encoder_lr,
        "ss_unet_lr": facts.unet_lr,
        "ss_num_train_images": facts.num_train_images,
        "ss_num_validation_images": 0,
        "ss_num_reg_images": facts.num_reg_images,
        "ss_num_batches_per_epoch": facts.num_batches_per_epoch,
        "ss_num_epochs": facts.num_epochs,
        "ss_gradient_checkpointing": bool(get("gradient_checkpointing")),
        "ss_gradient_accumulation_steps": grad_acc,
        "ss_max_train_steps": facts.max_train_steps,
        "ss_lr_warmup_steps": get("lr_warmup_steps"),
        "ss_lr_scheduler": facts.lr_scheduler,
        "ss_network_module": NETWORK_MODULE,
        "ss_network_dim": get("network_dim"),
        "ss_network_alpha": get("network_alpha"),
        "ss_network_dropout": get("network_dropout"),
        "ss_mixed_precision": get("mixed_precision") or "no",
        "ss_full_fp16": bool(get("full_fp16")),
        "ss_v2": facts.arch == "sd2",
        "ss_base_model_version": base_model_version(facts.arch, facts.v_parameterization),
        "ss_clip_skip": get("clip_skip"),
        "ss_max_token_length": get("max_token_length"),
        "ss_cache_latents": bool(get("cache_latents")),
        "ss_seed": facts.seed,
        "ss_lowram": bool(get("lowram")),
        "ss_noise_offset": get("noise_offset"),
        "ss_multires_noise_iterations": get("multires_noise_iterations"),
        "ss_multires_noise_discount": get("multires_noise_discount"),
        "ss_adaptive_noise_scale": get("adaptive_noise_scale"),
        "ss_zero_terminal_snr": bool(get("zero_terminal_snr")),
        "ss_training_comment": get("training_comment"),
        "ss_sd_scripts_commit_hash": "(unknown)",
        "ss_optimizer": facts.optimizer,
        "ss_max_grad_norm": get("max_grad_norm"),
        "ss_caption_dropout_rate": get("caption_dropout_rate"),
        "ss_caption_dropout_every_n_epochs": get("caption_dropout_every_n_epochs"),
        "ss_caption_tag_dropout_rate": get("caption_tag_dropout_rate"),
        "ss_face_crop_aug_range": get("face_crop_aug_range"),
        "ss_prior_loss_weight": get("prior_loss_weight"),
        "ss_min_snr_gamma": get("min_snr_gamma"),
        "ss_scale_weight_norms": get("scale_weight_norms"),
        "ss_ip_noise_gamma": get("ip_noise_gamma"),
        "ss_debiased_estimation": bool(get("debiased_estimation_loss")),
        "ss_noise_offset_random_strength": bool(get("noise_offset_random_strength")),
        "ss_ip_noise_gamma_random_strength": bool(get("ip_noise_gamma_random_strength")),
        "ss_loss_type": get("loss_type"),
        "ss_huber_schedule": get("huber_schedule"),
        "ss_huber_scale": get("huber_scale"),
        "ss_huber_c": get("huber_c"),
        "ss_fp8_base": bool(get("fp8_base")),
        "ss_fp8_base_unet": bool(get("fp8_base_unet")),
        "ss_validation_seed": get("validation_seed"),
        "ss_validation_split": get("validation_split"),
        "ss_max_validation_steps": get("max_validation_steps"),
        "ss_validate_every_n_epochs": get("validate_every_n_epochs"),
        "ss_validate_every_n_steps": get("validate_every_n_steps"),
        "ss_resize_interpolation": get("resize_interpolation"),
        "ss_tag_frequency": json.dumps(facts.tag_frequency),
    }
    if facts.datasets_json is not None:
        # dataset-config mode (§7.1): one JSON list describes every dataset and subset
        md["ss_datasets"] = facts.datasets_json
        md["ss_dataset_dirs"] = json.dumps(facts.dataset_dirs)
    else:
        md.update({
            "ss_batch_size_per_device": batch,
            "ss_total_batch_size": batch * facts.num_processes * grad_acc,
            "ss_resolution": get("resolution"),
            "ss_color_aug": bool(get("color_aug")),
            "ss_flip_aug": bool(get("flip_aug")),
            "ss_random_crop": bool(get("random_crop")),
            "ss_shuffle_caption": bool(get("shuffle_caption")),
            "ss_keep_tokens": get("keep_tokens"),
            "ss_enable_bucket": bool(get("enable_bucket")),
            "ss_bucket_no_upscale": bool(get("bucket_no_upscale")),
            "ss_min_bucket_reso": get("min_bucket_reso"),
            "ss_max_bucket_reso": get("max_bucket_reso"),
            "ss_dataset_dirs": json.dumps(facts.dataset_dirs),
            "ss_reg_dataset_dirs": json.dumps(facts.reg_dataset_dirs),
            "ss_bucket_info": json.dumps(facts.bucket_info),
        })
    net_args = get("network_args")
    from lora_compat.plan import network_kind, parse_network_args

    parsed: dict[str, Any] = dict(parse_network_args(net_args))
    kind = network_kind(get("network_module"), parsed)
    if kind in ("loha", "lokr"):
        # the file is a LyCORIS one whatever module name the config used (networks.loha, lycoris.kohya...)
        md["ss_network_module"] = LYCORIS_MODULE
        parsed["algo"] = kind
    if parsed:
        # sd-scripts injects "dropout" from network_dropout whenever network_args is non-empty (§8).
        parsed.setdefault("dropout", get("network_dropout"))
        md["ss_network_args"] = json.dumps(parsed)
    if model:
        # sd-scripts hashes an existing base model path (file: both hashes; folder: "IsADirectory") and keeps only
        # its basename; a hub id or our tiny:… names are written as given.
        if os.path.exists(str(model)):
            md["ss_sd_model_hash"], md["ss_new_sd_model_hash"] = _file_hashes(str(model))
            md["ss_sd_model_name"] = os.path.basename(str(model))
        else:
            md["ss_sd_model_name"] = model
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


def modelspec(get: Callable[[str], Any], arch: str, v: bool) -> dict[str, str]:
    """``modelspec.*`` keys (§7.3), rebuilt at every save (new date)."""
    if arch == "sdxl":
        architecture, impl, reso = "stable-diffusion-xl-v1-base/lora", \
            "https://github.com/Stability-AI/generative-models", "1024x1024"
    elif arch == "sd2":
        architecture = "stable-diffusion-v2-768-v/lora" if v else "stable-diffusion-v2-512/lora"
        impl, reso = "diffusers", ("768x768" if v else "512x512")
    else:
        architecture, impl, reso = "stable-diffusion-v1/lora", "diffusers", "512x512"
    res = get("resolution")
    if res:
        parts = [p.strip() for p in str(res).strip("()[] ").split(",")] if not isinstance(res, (list, tuple)) \
            else [str(x) for x in res]
        w, h = (parts[0], parts[1]) if len(parts) > 1 else (parts[0], parts[0])
        reso = f"{w}x{h}"
    now = datetime.datetime.now().replace(microsecond=0)
    md: dict[str, Any] = {
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": architecture,
        "modelspec.implementation": impl,
        "modelspec.title": get("metadata_title") or get("output_name") or f"LoRA@{now.isoformat()}",
        "modelspec.resolution": reso,
        "modelspec.date": now.isoformat(),
        "modelspec.prediction_type": "v" if v else "epsilon",
        "modelspec.implementation_version": "sd-scripts/unknown",
    }
    lo, hi = get("min_timestep"), get("max_timestep")
    if lo is not None or hi is not None:
        md["modelspec.timestep_range"] = f"{lo or 0},{hi if hi is not None else 1000}"
    if get("clip_skip") is not None:
        md["modelspec.encoder_layer"] = str(get("clip_skip"))
    for key in ("description", "author", "license", "tags"):
        value = get(f"metadata_{key}")
        if value is not None:
            md[f"modelspec.{key}"] = value
    return {k: _s(v) for k, v in md.items() if v is not None}


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
