"""Epochs, steps, warmup and batch sizes as sd-scripts computes them (reference §4.7, §4.11).

With every image folder on this machine the batches of an epoch are counted bucket by bucket from the images
themselves (:class:`lora_compat.config.inventory.BucketedDataset`, the same code the engine's dataset uses),
so the numbers are exactly what ``train`` runs; otherwise they are estimated from image counts (``--images``)
and said to be a lower bound. The kohya_ss GUI's ``epoch`` and percent warmup and Derrian's estimates, when
their reader could not count the images, are resolved here (legacy-dialects.md §2.6, §3.4).
"""

from __future__ import annotations

import math
import os
from typing import Any

from lora_compat.config.dataset import ResolvedDataset
from lora_compat.config.model import CanonicalConfig
from lora_compat.plan.parts import StepPlan
from lora_compat.semantics.schedules import warmup_steps
from lora_compat.semantics.steps import (
    batches_per_epoch,
    derrian_a1_max_train_steps,
    derrian_a1_warmup_steps,
    derrian_ui_max_train_steps,
    derrian_ui_warmup_steps,
    kohya_gui_max_train_steps,
    kohya_gui_warmup_steps,
    max_train_steps_for_epochs,
    optimizer_steps_per_epoch,
    train_epochs,
)


def _number(value: Any) -> float | None:
    """A real number (not a bool), else None: the spine validates types, but the plan never crashes on a value
    it could not check."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _int_option(cfg: CanonicalConfig, name: str) -> int:
    """An int option's effective value (the schema's default when unset); the default also stands in for a value
    that is not a positive number (the validator reports it)."""
    from lora_compat.config.options import default

    v = _number(cfg.effective(name))
    return int(default(name)) if v is None or not math.isfinite(v) or int(v) < 1 else int(v)


def _exact_batches(blueprints: list[ResolvedDataset], base_dir: str | None, seed: int | None,
                   explain: list[str], problems: list[str] | None = None) -> int | None:
    """Batches per epoch counted from the images, bucket by bucket, as the engine's dataset will hold them; None
    when a folder is not on this machine or a dataset cannot be read (then the estimate is used)."""
    from lora_compat.config.inventory import DREAMBOOTH, FINETUNE, BucketedDataset
    from lora_compat.errors import UserError

    if not blueprints:
        return None
    lines, total = [], 0
    for i, bp in enumerate(blueprints):
        if bp.kind not in (DREAMBOOTH, FINETUNE):
            return None
        for sub in bp.subsets:
            folder = sub.get("image_dir")
            if bp.kind == DREAMBOOTH and folder is not None and not _folder_exists(str(folder), base_dir):
                return None
            meta = sub.get("metadata_file")
            if bp.kind == FINETUNE and (meta is None or not _file_exists(str(meta), base_dir)):
                return None
        try:
            ds = BucketedDataset(bp.kind, {**bp.params, "seed": 0 if seed is None else seed}, bp.subsets,
                                 base_dir=base_dir, index=i)
            ds.make_buckets()
        except UserError as exc:
            explain.append(f"dataset {i}: the images cannot be counted exactly ({exc}); estimated instead")
            if problems is not None:
                problems.append(str(exc))   # the engine's dataset would stop on it too
            return None
        buckets = [len(b) for b in ds.buckets if b]
        reg = " incl. balanced regularization" if ds.num_reg_images else ""
        lines.append(f"dataset {i}: {sum(buckets)} samples (images x repeats{reg}) in {len(buckets)} bucket(s), "
                     f"batch {ds.batch_size}: {len(ds)} batches (a batch never mixes buckets)")
        total += len(ds)
    explain.extend(lines)
    return total


def _folder_exists(folder: str, base_dir: str | None) -> bool:
    return os.path.isdir(folder) or bool(base_dir and not os.path.isabs(folder)
                                         and os.path.isdir(os.path.join(base_dir, folder)))


def _file_exists(path: str, base_dir: str | None) -> bool:
    return os.path.exists(path) or bool(base_dir and not os.path.isabs(path)
                                        and os.path.exists(os.path.join(base_dir, path)))


def dataset_batch_sizes(cfg: CanonicalConfig, blueprints: list[ResolvedDataset] | None) -> list[int]:
    """The batch size of each dataset (a dataset-level ``batch_size`` overrides ``train_batch_size``)."""
    if blueprints:
        return [max(1, int(_number(bp.params.get("batch_size")) or 1)) for bp in blueprints]
    sizes = []
    for ds in cfg.datasets:
        bs = _number(ds.get("batch_size", None))
        if bs is None and "batch_size" in cfg.general:
            bs = _number(cfg.general["batch_size"].value)
        if bs is None:
            bs = _int_option(cfg, "train_batch_size")
        sizes.append(int(bs) or 1)
    return sizes


def _image_count(folder: str, image_counts: dict[str, int] | None) -> int | None:
    """Images in ``folder``: from ``image_counts`` (by path or by folder name), else counted on disk."""
    import os

    from lora_compat.config.kohya_folder import count_images

    if image_counts:
        for key in (folder, os.path.normpath(folder), os.path.basename(os.path.normpath(folder))):
            if key in image_counts:
                return int(image_counts[key])
    return count_images(folder) if os.path.isdir(folder) else None


def _subset_images(cfg: CanonicalConfig,
                   image_counts: dict[str, int] | None) -> list[tuple[bool, int, int, int]] | None:
    """(is_reg, images, num_repeats, dataset index) per subset, or None when any subset cannot be counted."""
    rows = []
    for di, _si, ds, sub in cfg.iter_subsets():
        image_dir = sub.get("image_dir")
        n = _image_count(str(image_dir), image_counts) if image_dir is not None else None
        if n is None:
            return None
        repeats = _number(cfg.subset_value(ds, sub, "num_repeats", None))
        if repeats is None:
            repeats = _number(cfg.get("dataset_repeats", 1)) or 1
        rows.append((bool(sub.get("is_reg", False)), n, int(repeats), di))
    return rows or None


def _steps_per_epoch(cfg: CanonicalConfig, image_counts: dict[str, int] | None,
                     explain: list[str]) -> int | None:
    rows = _subset_images(cfg, image_counts)
    if rows is None:
        if cfg.datasets or not cfg.get("train_data_dir") or not image_counts:
            return None
        # kohya folders not on this machine: sub-folder image counts given by name ("10_sks dog": 25)
        samples = _folder_total(None, image_counts)
        if samples is None:
            return None
        bs = _int_option(cfg, "train_batch_size")
        batches = batches_per_epoch([samples], bs)
        explain.append(f"train_data_dir sub-folders (given counts): {samples} samples (images x repeats) / batch "
                       f"{bs} = {batches} batches (regularization folders not included)")
        return batches
    total = 0
    for di, ds in enumerate(cfg.datasets):
        train = sum(n * r for is_reg, n, r, d in rows if d == di and not is_reg)
        reg_images = sum(n for is_reg, n, _r, d in rows if d == di and is_reg)
        # sd-scripts balances regularization samples to the number of training samples (reference §4.1)
        samples = train + (train if reg_images else 0)
        ds_bs = _number(ds.get("batch_size", None))
        if ds_bs is None and "batch_size" in cfg.general:
            ds_bs = _number(cfg.general["batch_size"].value)
        if ds_bs is None:
            ds_bs = _int_option(cfg, "train_batch_size")
        bs = int(ds_bs) or 1  # sd-scripts would fail on 0; keep the arithmetic defined
        batches = batches_per_epoch([samples], bs)
        explain.append(f"dataset {di}: {train} training samples (images x repeats)"
                       + (f" + {train} balanced regularization samples" if reg_images else "")
                       + f" / batch {bs} = {batches} batches (lower bound: sd-scripts counts partial"
                       " batches per bucket)")
        total += batches
    return total


def _blueprint_samples(blueprints: list[ResolvedDataset], image_counts: dict[str, int] | None,
                       base_dir: str | None) -> int | None:
    """Σ images x num_repeats over every subset of the resolved datasets; None when one cannot be counted."""
    total, found = 0, False
    for bp in blueprints:
        for sub in bp.subsets:
            folder = sub.get("image_dir")
            if folder is None:
                return None
            folder = str(folder)
            if not os.path.isdir(folder) and base_dir and os.path.isdir(os.path.join(base_dir, folder)):
                folder = os.path.join(base_dir, folder)
            n = _image_count(folder, image_counts)
            if n is None:
                return None
            total += n * int(_number(sub.get("num_repeats")) or 1)
            found = True
    return total if found else None


def _folder_total(root: Any, image_counts: dict[str, int] | None) -> int | None:
    """Σ repeats x images over the ``<repeats>_<name>`` sub-folders of a kohya image folder (the front-ends'
    own estimate, bucket-agnostic). Sub-folders come from disk, else from ``image_counts`` keyed by name."""
    import os

    from lora_compat.config.kohya_folder import parse_folder_name

    names: dict[str, int] = {}
    if root and os.path.isdir(str(root)):
        for entry in sorted(os.listdir(str(root))):
            full = os.path.join(str(root), entry)
            if os.path.isdir(full):
                names[entry] = _image_count(full, image_counts) or 0
    elif image_counts:
        names = {os.path.basename(os.path.normpath(k)): v for k, v in image_counts.items()}
    total, found = 0, False
    for name, count in names.items():
        parsed = parse_folder_name(name)
        if parsed is not None:
            total += parsed[0] * int(count)
            found = True
    return total if found else None


def _length_notes(cfg: CanonicalConfig) -> tuple[Any, Any]:
    """(kohya_ss GUI, Derrian A1) notes of a training length the front-end derived from image counts that its
    reader could not make (folders absent); None for each when there is none."""
    gui = next((n for n in cfg.notes if n.code == "kohya-gui-epoch-steps-unresolved"), None)
    a1 = next((n for n in cfg.notes if n.code == "derrian-a1-epochs-to-steps"
               and n.data.get("max_train_steps") is None), None)
    return gui, a1


# reader notes of a warmup the front-end derived from its own step estimate, unresolved by the reader
_WARMUP_NOTES = ("kohya-gui-warmup-unresolved", "derrian-warmup-unresolved", "derrian-toml-warmup-unresolved")


def _gui_epoch_steps(cfg: CanonicalConfig, image_counts: dict[str, int] | None,
                     explain: list[str]) -> int | None:
    """The front-end's own max_train_steps from its epoch count when the reader could not count the images.

    kohya_ss GUI (legacy-dialects.md §2.6): ceil(images x repeats / batch / grad_acc x epoch x reg_factor);
    Derrian A1 before 2023-02-04 (§3.4): int(images x repeats / batch x epochs).
    """
    gui, a1 = _length_notes(cfg)
    if gui is not None:
        d = gui.data
        # the folder the run reads (train --train-data replaces the preset's)
        total = _folder_total(cfg.get("train_data_dir") or d.get("train_data_dir"), image_counts)
        if total is None:
            return None
        epoch, bs = int(d.get("epoch") or 1), int(d.get("train_batch_size") or 1)
        ga, reg = int(d.get("gradient_accumulation_steps") or 1), int(d.get("reg_factor") or 1)
        steps = kohya_gui_max_train_steps(total, bs, ga, epoch, reg)
        explain.append(f"kohya_ss GUI epoch {epoch}: ceil({total} images x repeats / batch {bs} / grad_accum {ga} "
                       f"x {epoch} x reg_factor {reg}) = max_train_steps {steps}")
        return steps
    if a1 is not None:
        total = _folder_total(cfg.get("train_data_dir"), image_counts)
        if total is None:
            return None
        reg_samples = _a1_reg_samples(cfg, a1)
        if reg_samples is None:
            return None
        epochs, bs = int(a1.data.get("epochs") or 1), int(a1.data.get("train_batch_size") or 1)
        steps = derrian_a1_max_train_steps(total, bs, epochs, floor_per_epoch=bool(a1.data.get("floor_per_epoch")),
                                           reg_samples=reg_samples)
        explain.append(f"Derrian A1 num_epochs {epochs}: int({total} images x repeats / batch {bs} x {epochs})"
                       + (" x 2 (regularization images)" if reg_samples else "") + f" = max_train_steps {steps}")
        return steps
    return None


def _a1_reg_samples(cfg: CanonicalConfig, note: Any) -> int | None:
    """Regularization samples in Derrian A1's own step estimate: 0 unless the loader version doubled the count for
    them (the reader's note says ``reg_double``) and a regularization folder is set; None when that folder cannot
    be read here (the estimate is then unknown, not silently halved)."""
    reg_dir = cfg.get("reg_data_dir")
    if not note.data.get("reg_double") or not reg_dir:
        return 0
    return (_folder_total(reg_dir, None) or 0) if os.path.isdir(str(reg_dir)) else None


def _frontend_warmup(cfg: CanonicalConfig, mts: int | None, image_counts: dict[str, int] | None,
                     explain: list[str], batch: int = 1, blueprints: list[ResolvedDataset] | None = None,
                     base_dir: str | None = None) -> int | None:
    """Warmup a front-end computed from its own step estimate, when the reader could not (image folders)."""
    if cfg.get("lr_warmup_steps") is not None:
        return None
    gui = next((n for n in cfg.notes if n.code == "kohya-gui-warmup-unresolved"), None)
    if gui is not None and not cfg.get("dataset_config") and mts is not None:
        pct = float(gui.data.get("percent") or 0)
        warmup = kohya_gui_warmup_steps(pct, mts)
        explain.append(f"kohya_ss GUI lr_warmup {pct:g}% of {mts} steps: round({pct:g} x {mts} / 100) = "
                       f"{warmup} warmup steps")
        return warmup
    der = next((n for n in cfg.notes if n.code == "derrian-warmup-unresolved"), None)
    if der is not None:
        total = _folder_total(cfg.get("train_data_dir"), image_counts)
        if total is None:
            return None
        reg = _a1_reg_samples(cfg, der)
        if reg is None:
            return None
        epochs, bs = int(der.data.get("epochs") or 1), int(der.data.get("train_batch_size") or 1)
        estimate = derrian_a1_max_train_steps(total, bs, epochs, floor_per_epoch=bool(der.data.get("floor_per_epoch")),
                                              reg_samples=reg)
        ratio = float(der.data.get("ratio") or 0)
        warmup = derrian_a1_warmup_steps(estimate, ratio)
        explain.append(f"Derrian warmup_lr_ratio {ratio:g} of its estimate int({total} / {bs} x {epochs}) = "
                       f"{estimate} steps: {warmup} warmup steps")
        return warmup
    toml = next((n for n in cfg.notes if n.code == "derrian-toml-warmup-unresolved"), None)
    if toml is not None and not cfg.get("lr_scheduler_type"):
        # Derrian's UI (U1): round(steps x ratio), steps = max_train_steps, else Σ images x repeats x epochs //
        # batch over the subsets (legacy-dialects.md §4.1 step 5)
        ratio = float(toml.data.get("ratio") or 0)
        if cfg.is_set("max_train_steps") and mts is not None:
            estimate = mts
        else:
            samples = _blueprint_samples(blueprints or [], image_counts, base_dir)
            if samples is None:
                return None
            epochs = int(_number(cfg.get("max_train_epochs")) or 1)
            estimate = derrian_ui_max_train_steps(samples, epochs, batch)
        warmup = derrian_ui_warmup_steps(estimate, ratio)
        explain.append(f"Derrian warmup_ratio {ratio:g} of its step estimate {estimate}: round({estimate} x {ratio:g}) "
                       f"= {warmup} warmup steps")
        return warmup
    return None


def _ratio_steps(value: Any, max_train_steps: int | None, explain: list[str], name: str) -> int | None:
    """sd-scripts' W: int(r x steps) for a float r (a ratio), the int itself otherwise (reference §4.11)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if max_train_steps is None:
            return None
        w = warmup_steps(value, max_train_steps)
        explain.append(f"{name} {value!r} is a ratio: int({value!r} x {max_train_steps}) = {w} steps")
        return w
    if isinstance(value, int):
        return value
    return None


def plan_steps(cfg: CanonicalConfig, image_counts: dict[str, int] | None = None, *,
               blueprints: list[ResolvedDataset] | None = None, base_dir: str | None = None,
               seed: int | None = None, max_steps: int | None = None, problems: list[str] | None = None) -> StepPlan:
    """Resolve epochs, steps, warmup and batch sizes as sd-scripts would on one process (reference §4.7).

    ``blueprints`` are the resolved datasets (computed from ``cfg`` when not given); with their folders on this
    machine the batches are counted exactly. ``max_steps`` (``train --max-steps``) replaces the length. Errors
    reading the datasets (which would stop training) are appended to ``problems``.
    """
    from lora_compat.config.dataset import resolve_subsets

    explain: list[str] = []
    ga = _int_option(cfg, "gradient_accumulation_steps")
    bs = _int_option(cfg, "train_batch_size")
    if blueprints is None:
        blueprints = resolve_subsets(cfg)
        if base_dir is None and cfg.source:
            base_dir = os.path.dirname(os.path.abspath(cfg.source))
    sizes = dataset_batch_sizes(cfg, blueprints)
    batch = sizes[0] if sizes and len(set(sizes)) == 1 else bs
    if sizes and batch != bs:
        explain.append(f"the dataset's batch_size {batch} replaces train_batch_size {bs}")
    spe = _exact_batches(blueprints, base_dir, seed, explain, problems)
    exact = spe is not None
    if spe is None:
        spe = _steps_per_epoch(cfg, image_counts, explain)
    opt_spe = optimizer_steps_per_epoch(spe, 1, ga) if spe is not None else None
    epochs_opt = _number(cfg.get("max_train_epochs"))
    max_epochs: int | None = None
    mts: int | None
    epochs: int | None
    length_from = "max_train_steps" if cfg.is_set("max_train_steps") else "default"
    if max_steps is not None:
        mts = int(max_steps)
        length_from = "--max-steps"
        explain.append(f"--max-steps {mts} replaces the configured length")
        epochs = train_epochs(mts, spe, 1, ga) if spe and opt_spe else None
    elif epochs_opt:
        n_epochs = int(epochs_opt)
        epochs = max_epochs = n_epochs
        length_from = "max_train_epochs"
        if spe is not None:
            mts = max_train_steps_for_epochs(n_epochs, spe, 1, ga)
            explain.append(f"max_train_epochs {epochs} x ceil({spe} batches / grad_accum {ga}) = {mts} steps"
                           " (overrides max_train_steps)")
        else:
            mts = None
            explain.append(f"max_train_epochs {epochs}: steps unknown until the images are counted")
    else:
        gui = _gui_epoch_steps(cfg, image_counts, explain)
        pending = [n for n in _length_notes(cfg) if n is not None]
        if gui is not None:
            mts, length_from = gui, "front-end estimate"
        elif pending:
            # not sd-scripts' 1600: the front-end ran its own count, which needs the images
            mts = None
            length_from = "front-end estimate"
            explain.append(f"{pending[0].message}: max_train_steps unknown until the images are counted "
                           "(give --images FOLDER=COUNT)")
        else:
            mts = _int_option(cfg, "max_train_steps")
        epochs = train_epochs(mts, spe, 1, ga) if spe and mts is not None else None
        if epochs is not None:
            explain.append(f"ceil(max_train_steps {mts} / {opt_spe} steps per epoch) = {epochs} epochs")
    warmup = _ratio_steps(cfg.get("lr_warmup_steps"), mts, explain, "lr_warmup_steps")
    frontend = _frontend_warmup(cfg, mts, image_counts, explain, batch, blueprints, base_dir)
    if frontend is not None:
        warmup = frontend
    elif cfg.get("lr_warmup_steps") is None and any(n.code in _WARMUP_NOTES for n in cfg.notes):
        warmup = None
        explain.append("the front-end's warmup is a share of its own step estimate: unknown until the images "
                       "are counted")
    decay = _ratio_steps(cfg.get("lr_decay_steps"), mts, explain, "lr_decay_steps")
    return StepPlan(epochs=epochs, max_train_steps=mts, steps_per_epoch=spe, warmup_steps=warmup,
                    effective_batch_size=batch * ga, gradient_accumulation_steps=ga, train_batch_size=batch,
                    optimizer_steps_per_epoch=opt_spe, decay_steps=decay, explanation=explain,
                    max_train_epochs=max_epochs, length_from=length_from, dataset_batch_sizes=sizes,
                    steps_per_epoch_exact=exact)
