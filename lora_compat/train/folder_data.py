"""A small DreamBooth-style dataset for the engine, used when ``lora_compat.train.dataset`` (the full
sd-scripts dataset pipeline with bucketing and latent caching, owned by "semantics") is not available.

What it does, following sd-scripts where it matters for correctness of short runs:
* subsets from the config (``datasets``/``subsets`` with ``image_dir``, ``num_repeats``, ``is_reg``,
  ``class_tokens``, ``caption_extension``) or a kohya folder (``train_data_dir`` with ``N_name`` folders);
* captions from ``<image stem><caption_extension>``, else ``class_tokens``; processed per fetch by
  :func:`lora_compat.semantics.process_caption` (shuffle, keep_tokens, dropouts, prefix/suffix ...);
* regularization samples carry ``prior_loss_weight``; each image appears ``num_repeats`` times (§4.7);
* no bucketing: every image is resized to cover ``resolution`` and center-cropped (§4.6.5 cover/crop);
  ``flip_aug`` flips at random;
* batches of ``train_batch_size`` in one bucket, the last partial batch kept, order shuffled per epoch.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_compat.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CAPTION_KEYS = ("shuffle_caption", "caption_separator", "keep_tokens", "keep_tokens_separator",
                "secondary_separator", "enable_wildcard", "caption_dropout_rate", "caption_dropout_every_n_epochs",
                "caption_tag_dropout_rate", "caption_prefix", "caption_suffix", "token_warmup_min",
                "token_warmup_step")


@dataclass
class Sample:
    image: Path
    caption: str
    is_reg: bool
    flip_aug: bool
    caption_params: dict[str, Any]


def parse_resolution(value: Any) -> tuple[int, int]:
    """``resolution`` "512" / "512,768" / [w, h] -> (width, height)."""
    if value is None:
        return 512, 512
    if isinstance(value, (int, float)):
        return int(value), int(value)
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[-1]))
    parts = [p for p in re.split(r"[,x ]+", str(value).strip("()[] ")) if p]
    if not parts:
        raise UserError(f"resolution {value!r} is not W or W,H", key="resolution")
    w = int(parts[0])
    return w, int(parts[1]) if len(parts) > 1 else w


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def collect_datasets(cfg: Any, train_data_dir: str | None = None) -> list[Any]:
    """The config's datasets with every subset's final params (spine ``resolve_subsets``: subset > dataset >
    general > command line > default). ``train_data_dir`` replaces the config's data with a kohya folder."""
    from lora_compat.config.dataset import resolve_subsets

    if train_data_dir is not None:
        if not Path(train_data_dir).is_dir():
            raise UserError(f"training data folder {train_data_dir!r} not found", key="train_data_dir")
        cfg.set("train_data_dir", str(train_data_dir))
        cfg.datasets = []
    for name in ("train_data_dir", "reg_data_dir"):
        folder = cfg.get(name)
        if folder and not cfg.datasets and not Path(str(folder)).is_dir():
            raise UserError(f"{folder!r} is not a folder", key=name)
    return resolve_subsets(cfg)


class FolderDataset:
    """Batches for the engine: ``ds[i]`` -> dict(images, captions, loss_weights, original_sizes, ...)."""

    def __init__(self, subsets: list[dict[str, Any]], resolution: tuple[int, int], batch_size: int,
                 prior_loss_weight: float = 1.0, seed: int = 0, max_train_steps: int = 0) -> None:
        """One dataset (sd-scripts never mixes datasets in a batch): its subsets' resolved params."""
        self.resolution = resolution
        self.batch_size = max(1, int(batch_size))
        self.prior_loss_weight = prior_loss_weight
        self.seed = seed
        self.max_train_steps = max_train_steps
        self.epoch = 1
        self.current_step = 0
        train: list[Sample] = []
        reg: list[Sample] = []
        self.dataset_dirs: dict[str, dict[str, int]] = {}
        self.tag_frequency: dict[str, dict[str, int]] = {}
        self.num_train_images = 0
        self.num_reg_images = 0
        for sub in subsets:
            folder = Path(str(sub.get("image_dir") or ""))
            if not folder.is_dir():
                raise UserError(f"image_dir {str(folder)!r} is not a folder", key="image_dir")
            repeats = int(sub.get("num_repeats") or 1)
            ext = sub.get("caption_extension") or ".caption"
            if not str(ext).startswith("."):
                ext = "." + str(ext)
            is_reg = bool(sub.get("is_reg"))
            params = {k: sub[k] for k in CAPTION_KEYS if sub.get(k) is not None}
            images = _images(folder)
            tags = self.tag_frequency.setdefault(folder.name, {})
            for img in images:
                cap_file = img.with_suffix(str(ext))
                caption = cap_file.read_text(encoding="utf-8").strip() if cap_file.is_file() \
                    else str(sub.get("class_tokens") or "")
                for tag in (t.strip() for t in caption.split(",")):
                    if tag:
                        tags[tag] = tags.get(tag, 0) + 1
                sample = Sample(img, caption, is_reg, bool(sub.get("flip_aug")), params)
                (reg if is_reg else train).extend([sample] * repeats)
            if is_reg:
                self.num_reg_images += len(images) * repeats
            else:
                self.num_train_images += len(images) * repeats
                self.dataset_dirs[folder.name] = {"n_repeats": repeats, "img_count": len(images)}
        if not train:
            raise UserError("the dataset has no training images (check train_data_dir / image_dir and the "
                            "N_name folder convention)", key="train_data_dir")
        if reg:
            # sd-scripts balances regularization samples to the number of training samples (§4.1).
            reg = (reg * math.ceil(len(train) / len(reg)))[:len(train)]
        self.samples = train + reg
        self._cache: dict[Path, Any] = {}
        self._order = self._make_order(1)

    def _make_order(self, epoch: int) -> list[list[int]]:
        idx = list(range(len(self.samples)))
        rng = random.Random(self.seed * 1000003 + epoch)
        rng.shuffle(idx)
        batches = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        rng.shuffle(batches)
        return batches

    def __len__(self) -> int:
        return math.ceil(len(self.samples) / self.batch_size)

    def begin_epoch(self, epoch: int) -> None:
        """1-based epoch; reshuffles the batch order deterministically.

        Not named ``set_epoch``: accelerate's DataLoaderShard calls ``dataset.set_epoch(<its own 0-based
        iteration count>)`` on every iteration, which restarts at 0 in a resumed run."""
        self.epoch = epoch
        self._order = self._make_order(epoch)

    def set_current_step(self, step: int) -> None:
        self.current_step = step

    def _load(self, path: Path) -> Any:
        import numpy as np
        import torch
        from PIL import Image

        if path not in self._cache:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = self.resolution
                scale = max(w / im.width, h / im.height)
                nw, nh = max(w, round(im.width * scale)), max(h, round(im.height * scale))
                resample = Image.LANCZOS if scale > 1 else Image.BICUBIC
                im = im.resize((nw, nh), resample)
                left, top = (nw - w) // 2, (nh - h) // 2
                im = im.crop((left, top, left + w, top + h))
                arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
            self._cache[path] = (torch.from_numpy(arr).permute(2, 0, 1).contiguous(), (nh, nw), (top, left))
        return self._cache[path]

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        from lora_compat.semantics import process_caption

        items = [self.samples[j] for j in self._order[i]]
        # A per-batch RNG seeded from (seed, epoch, batch): caption shuffles/dropouts and flips do not depend
        # on when the loader fetches (accelerate prefetches one batch), so a resumed run sees the same batches.
        rng = random.Random((self.seed * 1000003 + self.epoch) * 1000003 + i)
        images, captions, weights, orig, crops = [], [], [], [], []
        for s in items:
            img, size, crop = self._load(s.image)
            if s.flip_aug and rng.random() < 0.5:
                img = torch.flip(img, dims=[2])
            images.append(img)
            captions.append(process_caption(s.caption, s.caption_params, epoch=self.epoch,
                                            step=self.current_step, max_train_steps=self.max_train_steps,
                                            rng=rng))
            weights.append(self.prior_loss_weight if s.is_reg else 1.0)
            orig.append(size)
            crops.append(crop)
        w, h = self.resolution
        return {"images": torch.stack(images), "captions": captions,
                "loss_weights": torch.tensor(weights, dtype=torch.float32), "original_sizes": orig,
                "crop_top_lefts": crops, "target_sizes": [(h, w)] * len(items)}


class ConcatBatches:
    """Several datasets, each batching on its own (sd-scripts never mixes datasets in a batch)."""

    def __init__(self, parts: list[FolderDataset]) -> None:
        self.parts = parts
        self.index = [(pi, bi) for pi, p in enumerate(parts) for bi in range(len(p))]
        for name in ("num_train_images", "num_reg_images"):
            setattr(self, name, sum(getattr(p, name) for p in parts))
        self.dataset_dirs = {k: v for p in parts for k, v in p.dataset_dirs.items()}
        self.tag_frequency = {k: v for p in parts for k, v in p.tag_frequency.items()}
        self.max_train_steps = 0

    def __len__(self) -> int:
        return len(self.index)

    def begin_epoch(self, epoch: int) -> None:
        """1-based epoch (see :meth:`FolderDataset.begin_epoch`)."""
        for p in self.parts:
            p.begin_epoch(epoch)
        # Interleave the datasets' batches in a seeded, per-epoch order.
        self.index = [(pi, bi) for pi, p in enumerate(self.parts) for bi in range(len(p))]
        random.Random(self.parts[0].seed * 7919 + epoch).shuffle(self.index)

    def set_current_step(self, step: int) -> None:
        for p in self.parts:
            p.set_current_step(step)
            p.max_train_steps = self.max_train_steps

    def __getitem__(self, i: int) -> dict[str, Any]:
        pi, bi = self.index[i]
        return self.parts[pi][bi]


def build_dataset(cfg: Any, train_data_dir: str | None, seed: int) -> ConcatBatches:
    """The engine's dataset for ``cfg`` (see the module docstring for what is and is not supported)."""
    parts = []
    for ds in collect_datasets(cfg, train_data_dir):
        if ds.kind != "dreambooth":
            raise UserError(f"{ds.kind} datasets (metadata/conditioning files) are not supported by this engine "
                            "yet; use image folders with caption files", key="datasets")
        if ds.params.get("enable_bucket"):
            pass  # no bucketing here: every image is cover-resized and center-cropped to the resolution
        res = ds.params.get("resolution") or [512, 512]
        w, h = parse_resolution(res)
        if w % 8 or h % 8:
            raise UserError(f"resolution {w}x{h} must be a multiple of 8", key="resolution")
        parts.append(FolderDataset(ds.subsets, (w, h), int(ds.params.get("batch_size") or 1),
                                   float(ds.params.get("prior_loss_weight") or 1.0), seed))
    if not parts:
        raise UserError("no training data: set train_data_dir (kohya N_name folders) or a dataset config, "
                        "or pass --train-data", key="train_data_dir")
    return ConcatBatches(parts)
