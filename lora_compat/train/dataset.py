"""The training engine's dataset: sd-scripts' DreamBooth / fine-tune datasets, buckets, batches and epochs.

Built from the plan's dataset blueprint (the spine's :func:`lora_compat.config.dataset.resolve_subsets`), or
from plain dicts with sd-scripts' dataset-config key names; images, captions and buckets come from
:mod:`lora_compat.config.inventory`, which ``plan`` uses to count batches. Reference sections
(sd-scripts-reference.md):

* §4.1 DreamBooth construction: non-recursive sorted image listing (``.png .jpg .jpeg .webp .bmp`` and their
  upper-case forms), the same ``image_dir`` twice in a dataset is skipped, ``num_repeats < 1`` skips a
  subset, captions from ``<stem><caption_extension>`` (or the face-crop stem), else ``class_tokens``, else
  ``""``; an empty caption file is an error; regularization images balanced to the training count by
  extra repeats (the first reg images in sorted order win); with ``validation_split`` the training part of
  each non-reg subset (shuffled with ``random.Random(validation_seed)``, first ``ceil(n*(1-split))`` kept;
  without a validation seed sd-scripts uses its global RNG, here the dataset ``seed``); the validation part
  (the last ``round(n*split)``) is :func:`build_validation_dataset`.
* §4.2 fine-tune subsets (``metadata_file`` JSON / JSONL; tags appended with ``caption_separator``).
* §4.4 captions: :func:`lora_compat.semantics.process_caption` on every fetch, with the epoch / step the
  dataset *has seen* (the §4.4.4 lag; see "Lag" below).
* §4.6 buckets: :class:`lora_compat.semantics.BucketSelector`, resize + crop exactly as
  ``trim_and_resize_if_required`` (``area`` when shrinking, ``lanczos`` when enlarging, or the subset's
  ``resize_interpolation``; center crop or ``random_crop``), SDXL ``crop_top_left`` from the letterbox
  formula; no bucketing: face crop (``face_crop_aug_range`` with ``name_cx_cy_w_h`` file names), else
  random crop of larger images, exact size required (uncached), cover-resize + center crop (cached).
  ``flip_aug``, ``color_aug``, ``alpha_mask``. Resizing uses PIL: ``lanczos``/``box`` exactly as sd-scripts
  (which uses PIL for them); sd-scripts' cv2 methods (``area``, ``bilinear``, ``bicubic``, ``nearest``) are
  PIL's closest filters (``area`` = PIL ``BOX`` area averaging), so those pixels can differ slightly.
* §4.6.6 latent caching in memory or on disk (:mod:`lora_compat.train.latents`, sd-scripts' file names).
* §4.7 batches: every image ``num_repeats`` times in its bucket, ``ceil(n/batch_size)`` batches per bucket
  (the last one partial), batches never mix buckets or datasets; ``len()`` = batches per epoch.

Interface the training loop uses::

    ds = build_dataset(plan.dataset, seed, max_train_steps=n)      # or TrainDataset.from_subsets(...)
    ds.cache_latents(encode, to_disk=...)                           # optional (cache_latents options)
    for epoch in range(1, epochs + 1):
        ds.set_epoch(epoch)                                         # 1-based
        for i in range(len(ds)):
            ds.set_current_step(global_step)
            batch = ds[i]

``batch`` keys: ``images`` (float tensor B,3,H,W in [-1,1]) *or* ``latents`` (B,4,h,w when cached: unscaled
VAE samples as sd-scripts caches them; the loop multiplies by the VAE ``scaling_factor`` as sd-scripts
does), ``captions`` (processed strings), ``input_ids`` (list, one stacked tensor per tokenizer given, else
absent), ``loss_weights`` (float tensor: ``prior_loss_weight`` for
regularization images, 1.0 otherwise), ``is_reg``, ``flipped``, ``original_sizes`` / ``crop_top_lefts`` /
``target_sizes`` (lists of ``(h, w)`` / ``(top, left)`` / ``(h, w)`` ints for SDXL), ``alpha_masks``
(B,H,W float tensor or None), ``bucket`` ``(w, h)``, ``dataset_index``, ``custom_attributes`` (one dict
per sample, e.g. ``diff_output_preservation``).

Randomness and lag. sd-scripts re-seeds Python's global ``random`` with ``seed + epoch`` whenever a
dataset copy learns a new epoch, then shuffles the bucket-batch list and every bucket; flips, random crops,
colour augmentation and captions draw from the same stream. Each DataLoader worker owns a copy of the
dataset that learns the epoch/step only in the collate function, *after* building the item. Here every
such copy is a "view" with its own ``random.Random``: ``loader_workers=0`` is one main-process view (the
first batch of each epoch still sees the previous epoch, epoch 0 at the start), ``loader_workers=n``
gives ``n`` views that batches visit round-robin, reset to epoch 0 at each epoch unless
``persistent_workers`` (sd-scripts' default ``max_data_loader_n_workers`` is 8, non-persistent: the first
batch of each worker in each epoch sees epoch 0, so ``caption_dropout_every_n_epochs`` drops it).
``loader_workers=None`` disables the lag (1-based epochs everywhere). Prefetch depth is not emulated (the
step a view sees lags by one of its own items). The order in which batches are visited is a
permutation of ``range(len(ds))`` seeded with ``seed`` and the epoch (sd-scripts' DataLoader shuffles with
torch's generator, which cannot be reproduced here).
"""

from __future__ import annotations

import math
import os
import pickle
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lora_compat.config.dataset import FINETUNE as SPINE_FINETUNE
from lora_compat.config.inventory import (  # noqa: F401  (re-exported: the engine dataset's building blocks)
    DREAMBOOTH,
    FINETUNE,
    IMAGE_EXTENSIONS,
    BucketedDataset,
    ImageEntry,
    SubsetSpec,
    list_images,
    read_caption,
)
from lora_compat.errors import UserError
from lora_compat.semantics import process_caption


@dataclass
class _View:
    """A dataset copy as one DataLoader worker (or the main process) sees it."""

    epoch: int
    step: int
    rng: random.Random
    orders: list[tuple[list[tuple[int, int]], list[list[str]]]] = field(default_factory=list)


# ======================================================================================= image handling
def _pil_filter(name: str) -> Any:
    from PIL import Image

    return {
        "lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX,
        # cv2 methods in sd-scripts; PIL equivalents (INTER_AREA is area averaging = PIL BOX on shrink)
        "area": Image.Resampling.BOX, "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR, "linear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC, "cubic": Image.Resampling.BICUBIC,
    }[name]


def resize_image(img: Any, size: tuple[int, int], interpolation: str | None = None) -> Any:
    """Resize an HWC uint8 array to ``size`` (w, h) like sd-scripts' ``resize_image``: ``area`` when no
    side grows, ``lanczos`` otherwise, unless ``interpolation`` is given."""
    import numpy as np
    from PIL import Image

    h, w = img.shape[:2]
    if interpolation is None:
        interpolation = "area" if (w >= size[0] and h >= size[1]) else "lanczos"
    mode = "RGBA" if img.shape[2] == 4 else "RGB"
    out = Image.fromarray(img, mode).resize((int(size[0]), int(size[1])), _pil_filter(interpolation))
    return np.asarray(out).copy()


def trim_and_resize(img: Any, bucket_reso: tuple[int, int], resized_size: tuple[int, int], *,
                    random_crop: bool, rng: random.Random, interpolation: str | None = None
                    ) -> tuple[Any, tuple[int, int], tuple[int, int, int, int]]:
    """sd-scripts' ``trim_and_resize_if_required``: cover-resize, crop to the bucket (center or random),
    and the letterbox ``crop_ltrb`` for SDXL. Returns ``(image, original_size (w,h), crop_ltrb)``."""
    from lora_compat.semantics import crop_ltrb

    h, w = img.shape[:2]
    original = (w, h)
    if (w, h) != tuple(resized_size):
        img = resize_image(img, resized_size, interpolation)
    h, w = img.shape[:2]
    if w > bucket_reso[0]:
        trim = w - bucket_reso[0]
        p = rng.randint(0, trim) if random_crop else trim // 2
        img = img[:, p:p + bucket_reso[0]]
    if h > bucket_reso[1]:
        trim = h - bucket_reso[1]
        p = rng.randint(0, trim) if random_crop else trim // 2
        img = img[p:p + bucket_reso[1]]
    if img.shape[0] != bucket_reso[1] or img.shape[1] != bucket_reso[0]:
        raise UserError(f"internal error: image trimmed to {img.shape[1]}x{img.shape[0]}, expected bucket "
                        f"{bucket_reso[0]}x{bucket_reso[1]}")
    return img, original, crop_ltrb(bucket_reso, original)


def _face_info(path: str) -> tuple[int, int, int, int] | None:
    """``(cx, cy, w, h)`` from a face-crop file name ``name_cx_cy_w_h.ext`` (sd-scripts' naming)."""
    tokens = os.path.splitext(os.path.basename(path))[0].split("_")
    if len(tokens) < 5:
        return None
    try:
        face = tuple(int(t) for t in tokens[-4:])
    except ValueError:
        raise UserError(f"image {path!r}: face_crop_aug_range expects names ending in _cx_cy_w_h (integers)",
                        key="face_crop_aug_range") from None
    return face if face[0] > 0 else None  # type: ignore[return-value]


def crop_to_face(img: Any, target: tuple[int, int], face: tuple[int, int, int, int], aug_range: Sequence[float],
                 *, random_crop: bool, rng: random.Random, interpolation: str | None = None) -> Any:
    """sd-scripts' ``crop_target`` (no bucketing, uncached): scale so the face size falls in
    ``aug_range`` (relative to the short target side), then crop ``target`` (w, h) around the face."""
    height, width = img.shape[:2]
    tw, th = target
    if (width, height) == (tw, th):
        return img
    face_cx, face_cy, face_w, face_h = face
    face_size = max(face_w, face_h)
    size = min(th, tw)
    min_scale = max(th / height, tw / width)
    min_scale = min(1.0, max(min_scale, size / (face_size * aug_range[1])))
    max_scale = min(1.0, max(min_scale, size / (face_size * aug_range[0])))
    scale = min_scale if min_scale >= max_scale else rng.uniform(min_scale, max_scale)
    nh, nw = int(height * scale + 0.5), int(width * scale + 0.5)
    if nh < th or nw < tw:
        raise UserError(f"image of {width}x{height} is smaller than resolution {tw}x{th} after the face crop "
                        "scale; use larger images or enable_bucket")
    img = resize_image(img, (nw, nh), interpolation)
    face_cx, face_cy = int(face_cx * scale + 0.5), int(face_cy * scale + 0.5)
    for axis, (target_size, length, face_p) in enumerate(zip((th, tw), (nh, nw), (face_cy, face_cx), strict=True)):
        p1 = face_p - target_size // 2
        if random_crop:
            spread = max(length - face_p, face_p)
            p1 = p1 + (rng.randint(0, spread) + rng.randint(0, spread)) - spread
        elif aug_range[0] != aug_range[1] and face_size > size // 10 and face_size >= 40:
            p1 = p1 + rng.randint(-face_size // 20, +face_size // 20)
        p1 = max(0, min(p1, length - target_size))
        img = img[p1:p1 + target_size, :] if axis == 0 else img[:, p1:p1 + target_size]
    return img


def color_aug(img: Any, rng: random.Random) -> Any:
    """sd-scripts' ``AugHelper.color_aug`` on an RGB uint8 array: with probability 0.33 a hue shift of
    U(-8, 8) on OpenCV's 0-180 scale (applied to the array as if it were BGR, as sd-scripts does) or a
    "gamma" ``pixel ** U(0.95, 1.05)`` on raw 0-255 values. The hue shift uses PIL's HSV (0-255 hue), so
    it matches OpenCV's only up to hue quantization."""
    import numpy as np
    from PIL import Image

    if rng.random() > 0.33:
        return img
    if rng.random() > 0.5:
        shift = rng.uniform(-8, 8)
        if shift < 0:
            shift = 180 + shift
        bgr_as_rgb = np.ascontiguousarray(img[:, :, ::-1])
        hsv = np.asarray(Image.fromarray(bgr_as_rgb, "RGB").convert("HSV")).astype(np.float64)
        hue180 = hsv[:, :, 0] * 180.0 / 256.0
        hue180 = (np.floor(hue180) + shift) % 180
        hsv[:, :, 0] = np.clip(np.round(hue180 * 256.0 / 180.0), 0, 255)
        rgb = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))
        return np.ascontiguousarray(rgb[:, :, ::-1])
    gamma = rng.uniform(0.95, 1.05)
    return np.clip(img.astype(np.float64) ** gamma, 0, 255).astype(np.uint8)


def load_image(path: str, *, alpha: bool) -> Any:
    """HWC uint8 RGB (or RGBA when ``alpha``) array."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGBA" if alpha else "RGB")).copy()
    except OSError as exc:
        raise UserError(f"cannot read image {path!r}: {exc}") from None


def to_tensor(img: Any) -> Any:
    """``ToTensor`` + ``Normalize(0.5, 0.5)``: HWC uint8 -> CHW float32 in [-1, 1]."""
    import torch

    t = torch.from_numpy(img[:, :, :3].copy()).permute(2, 0, 1).float().div(255.0)
    return (t - 0.5) / 0.5


# =========================================================================================== the group
class TrainDataset:
    """All datasets of a config (sd-scripts ``DatasetGroup``); ``ds[i]`` is one batch."""

    def __init__(self, datasets: Sequence[BucketedDataset], *, seed: int = 0, max_train_steps: int = 0,
                 loader_workers: int | None = 0, persistent_workers: bool = False,
                 tokenizers: Sequence[Callable[[str], Any]] = (), sdxl: bool = False) -> None:
        self.datasets = list(datasets)
        self.seed = int(seed)
        self.max_train_steps = int(max_train_steps)
        self.loader_workers = loader_workers
        self.persistent_workers = persistent_workers
        self.tokenizers = list(tokenizers)
        self.sdxl = sdxl
        from lora_compat.train.latents import LatentCacheFiles

        self.latent_files: Any = LatentCacheFiles(sdxl=sdxl)   # cache_latents may install the family's layout
        # True when the engine caches text-encoder outputs (SDXL --cache_text_encoder_outputs): captions are
        # then the raw file text, without prefix/suffix, wildcards, separators or dropout (reference §4.4.5).
        self.raw_captions = False
        if not any(ds.images for ds in self.datasets):
            raise UserError("the dataset has no training images (check image_dir / train_data_dir and the "
                            "<repeats>_<name> folder convention)", key="train_data_dir")
        for ds in self.datasets:
            ds.make_buckets()
        self._offsets: list[int] = []
        total = 0
        for ds in self.datasets:
            self._offsets.append(total)
            total += len(ds)
        self._length = total
        # sd-scripts: make_buckets ends with shuffle_buckets() at epoch 0, seeding random with seed + 0.
        self._base_rng = random.Random()
        self._initial_orders = []
        for ds in self.datasets:
            indices, buckets = list(ds.bucket_indices), [list(b) for b in ds.buckets]
            self._shuffle_dataset(self._base_rng, 0, indices, buckets)
            self._initial_orders.append((indices, buckets))
        self.announced_epoch = 0
        self.announced_step = 0
        self._views: list[_View] = [self._fresh_view()]
        self._no_lag_view: _View | None = None
        self._perm: list[int] = list(range(total))

    # -------------------------------------------------------------------------------- construction
    @classmethod
    def from_subsets(cls, subsets: Sequence[Mapping[str, Any]], *, resolution: Any = (512, 512),
                     batch_size: int = 1, enable_bucket: bool = False, prior_loss_weight: float = 1.0,
                     dataset_params: Mapping[str, Any] | None = None, base_dir: str | None = None,
                     **kwargs: Any) -> TrainDataset:
        """One DreamBooth (or fine-tune, when subsets have ``metadata_file``) dataset from plain subset dicts."""
        kind = FINETUNE if subsets and all(s.get("metadata_file") for s in subsets) else DREAMBOOTH
        params = {"resolution": resolution, "batch_size": batch_size, "enable_bucket": enable_bucket,
                  "prior_loss_weight": prior_loss_weight, "seed": kwargs.get("seed", 0), **(dataset_params or {})}
        return cls([BucketedDataset(kind, params, subsets, base_dir=base_dir)], **kwargs)

    # -------------------------------------------------------------------------------------- epochs
    def _shuffle_dataset(self, rng: random.Random, epoch: int, indices: list[tuple[int, int]],
                         buckets: list[list[str]]) -> None:
        # BaseDataset.shuffle_buckets: random.seed(seed + epoch); shuffle batch list; shuffle each bucket.
        rng.seed(self.seed + epoch)
        rng.shuffle(indices)
        for bucket in buckets:
            rng.shuffle(bucket)

    def _fresh_view(self) -> _View:
        rng = random.Random()
        rng.setstate(self._base_rng.getstate())
        return _View(0, 0, rng, [(list(i), [list(b) for b in bs]) for i, bs in self._initial_orders])

    def _advance(self, view: _View, epoch: int, step: int) -> None:
        # DatasetGroup.set_current_epoch / set_current_step as run by the collate function.
        if epoch > view.epoch:
            start = view.epoch
            for indices, buckets in view.orders:
                for e in range(start + 1, epoch + 1):
                    self._shuffle_dataset(view.rng, e, indices, buckets)
            view.epoch = epoch
        elif epoch < view.epoch:
            view.epoch = epoch
        view.step = step

    def __len__(self) -> int:
        return self._length

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (1-based), as the loop's ``current_epoch.value = epoch + 1``."""
        self.announced_epoch = int(epoch)
        if self.loader_workers is None:
            if self._no_lag_view is None:
                self._no_lag_view = self._fresh_view()
            self._advance(self._no_lag_view, self.announced_epoch, self.announced_step)
        elif self.loader_workers > 0 and not self.persistent_workers:
            # non-persistent workers: fresh copies of the main-process dataset, which never saw an epoch
            self._views = [self._fresh_view() for _ in range(self.loader_workers)]
        elif self.loader_workers > 0 and len(self._views) != self.loader_workers:
            self._views = [self._fresh_view() for _ in range(self.loader_workers)]
        perm_rng = random.Random(self.seed * 1_000_003 + self.announced_epoch)
        self._perm = list(range(self._length))
        perm_rng.shuffle(self._perm)

    def set_current_step(self, step: int) -> None:
        """The optimizer step (``global_step``) before the next batch is built."""
        self.announced_step = int(step)
        if self._no_lag_view is not None:
            self._no_lag_view.step = self.announced_step

    def set_max_train_steps(self, max_train_steps: int) -> None:
        """``max_train_steps`` for ratio ``token_warmup_step`` values."""
        self.max_train_steps = int(max_train_steps)

    def _view_for(self, i: int) -> _View:
        if self.loader_workers is None:
            if self._no_lag_view is None:
                self._no_lag_view = self._fresh_view()
                self._advance(self._no_lag_view, max(1, self.announced_epoch), self.announced_step)
            return self._no_lag_view
        if self.loader_workers == 0:
            return self._views[0]
        return self._views[i % self.loader_workers]

    # ------------------------------------------------------------------------------------- batches
    def locate(self, i: int) -> tuple[int, int]:
        """(dataset index, batch index within it) of the ``i``-th batch of the current epoch."""
        if not 0 <= i < self._length:
            raise IndexError(i)
        g = self._perm[i]
        d = max(k for k, off in enumerate(self._offsets) if off <= g and len(self.datasets[k]) > 0)
        return d, g - self._offsets[d]

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        d, local = self.locate(i)
        ds = self.datasets[d]
        view = self._view_for(i)
        indices, buckets = view.orders[d]
        bucket_id, batch_no = indices[local]
        keys = buckets[bucket_id][batch_no * ds.batch_size:(batch_no + 1) * ds.batch_size]
        rng = view.rng
        images, latents, masks, captions = [], [], [], []
        weights, is_reg, flipped_list, orig_sizes, crops, targets = [], [], [], [], [], []
        for key in keys:
            entry = ds.images[key]
            sub = entry.subset
            weights.append(ds.prior_loss_weight if sub.is_reg else 1.0)
            is_reg.append(sub.is_reg)
            flipped = bool(sub.get("flip_aug")) and rng.random() < 0.5
            image = lat = mask = None
            if entry.latents is not None or entry.latents_npz is not None:
                lat, original, ltrb, mask = self._cached(entry, flipped)
                target = (lat.shape[2] * 8, lat.shape[1] * 8)
            else:
                image, original, ltrb, mask = self._load_and_augment(ds, entry, flipped, rng)
                target = (image.shape[2], image.shape[1])
            left_top = (ltrb[0], ltrb[1]) if not flipped else (target[0] - ltrb[2], ltrb[1])
            orig_sizes.append((int(original[1]), int(original[0])))
            crops.append((int(left_top[1]), int(left_top[0])))
            targets.append((int(target[1]), int(target[0])))
            flipped_list.append(flipped)
            images.append(image)
            latents.append(lat)
            masks.append(mask)
            if self.raw_captions:
                captions.append(entry.caption)   # cached TE outputs: sd-scripts never calls process_caption
            else:
                captions.append(process_caption(entry.caption, sub.caption, epoch=view.epoch, step=view.step,
                                                max_train_steps=self.max_train_steps, rng=rng))
        batch: dict[str, Any] = {
            "captions": captions,
            "loss_weights": torch.tensor(weights, dtype=torch.float32),
            "is_reg": is_reg,
            "flipped": flipped_list,
            "original_sizes": orig_sizes,
            "crop_top_lefts": crops,
            "target_sizes": targets,
            "bucket": ds.resos[indices[local][0]],
            "dataset_index": d,
            "custom_attributes": [dict(ds.images[k].subset.get("custom_attributes") or {}) for k in keys],
            "image_paths": [ds.images[k].path for k in keys],
        }
        # exactly one of "images" / "latents" is present (engines test `"latents" in batch`)
        if all(x is not None for x in latents):
            batch["latents"] = torch.stack(latents)
        else:
            batch["images"] = torch.stack(images)
        if any(m is not None for m in masks):
            h, w = targets[0]
            batch["alpha_masks"] = torch.stack([m if m is not None else torch.ones(h, w) for m in masks])
        else:
            batch["alpha_masks"] = None
        if self.tokenizers:
            batch["input_ids"] = [torch.stack([tok(c) for c in captions]) for tok in self.tokenizers]
        # the collate function runs after the item is built: only now does this copy learn epoch/step
        if self.loader_workers is not None:
            self._advance(view, self.announced_epoch, self.announced_step)
        return batch

    def _load_and_augment(self, ds: BucketedDataset, entry: ImageEntry, flipped: bool, rng: random.Random
                          ) -> tuple[Any, tuple[int, int], tuple[int, int, int, int], Any]:
        import torch

        sub = entry.subset
        use_alpha = bool(sub.get("alpha_mask"))
        img = load_image(entry.path, alpha=use_alpha)
        h, w = img.shape[:2]
        if ds.enable_bucket:
            img, original, ltrb = trim_and_resize(img, entry.bucket_reso, entry.resized_size,  # type: ignore[arg-type]
                                                  random_crop=bool(sub.get("random_crop")), rng=rng,
                                                  interpolation=sub.get("resize_interpolation"))
        else:
            face = _face_info(entry.path) if sub.get("face_crop_aug_range") is not None else None
            if face is not None:
                img = crop_to_face(img, (ds.width, ds.height), face, sub.get("face_crop_aug_range"),
                                   random_crop=bool(sub.get("random_crop")), rng=rng,
                                   interpolation=sub.get("resize_interpolation"))
                h, w = img.shape[:2]
            elif h > ds.height or w > ds.width:
                if not sub.get("random_crop"):
                    raise UserError(f"image {entry.path!r} is {w}x{h}, larger than resolution "
                                    f"{ds.width}x{ds.height}, and bucketing and random_crop are off "
                                    "(sd-scripts stops here): enable enable_bucket or random_crop")
                if h > ds.height:
                    p = rng.randint(0, h - ds.height)
                    img = img[p:p + ds.height]
                if w > ds.width:
                    p = rng.randint(0, w - ds.width)
                    img = img[:, p:p + ds.width]
            h, w = img.shape[:2]
            if (w, h) != (ds.width, ds.height):
                raise UserError(f"image {entry.path!r} is {w}x{h}, smaller than resolution {ds.width}x{ds.height} "
                                "and bucketing is off (sd-scripts stops here): enable enable_bucket")
            original, ltrb = (w, h), (0, 0, 0, 0)
        if sub.get("color_aug"):
            rgb = color_aug(img[:, :, :3], rng)
            if img.shape[2] == 4:
                img = img.copy()
                img[:, :, :3] = rgb
            else:
                img = rgb
        if flipped:
            img = img[:, ::-1, :].copy()
        mask = None
        if use_alpha:
            mask = torch.from_numpy(img[:, :, 3].astype("float32") / 255.0) if img.shape[2] == 4 else \
                torch.ones(img.shape[0], img.shape[1])
        return to_tensor(img), original, ltrb, mask

    def _cached(self, entry: ImageEntry, flipped: bool) -> tuple[Any, tuple[int, int], tuple[int, int, int, int], Any]:
        import torch

        if entry.latents is not None:
            lat = entry.latents_flipped if flipped else entry.latents
            mask = entry.alpha_mask_cached
            original, ltrb = entry.latents_original_size, entry.latents_crop_ltrb
        else:
            c = self.latent_files.load(entry.latents_npz, entry.bucket_reso)
            lat = torch.from_numpy(c.latents_flipped if flipped else c.latents)
            mask = None if c.alpha_mask is None else torch.from_numpy(c.alpha_mask)
            original, ltrb = c.original_size, c.crop_ltrb
        if lat is None:
            raise UserError(f"cached latents of {entry.path!r} have no flipped copy; delete the cache file "
                            "and cache again with flip_aug on")
        if mask is not None and flipped:
            mask = torch.flip(mask, [1])
        return lat, original, ltrb, mask  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------- caching
    def cache_latents(self, encode: Callable[[Any], Any], *, to_disk: bool = False, vae_batch_size: int = 1,
                      files: Any = None) -> int:
        """Encode every image once (``cache_latents`` / ``cache_latents_to_disk``); returns how many were encoded.

        ``encode`` maps a float tensor (B,3,H,W) in [-1,1] to *unscaled* latents (B,C,H/8,W/8), i.e.
        ``vae.encode(x).latent_dist.sample()``. Images are cover-resized and center-cropped to their bucket
        (also without bucketing); with ``flip_aug`` the flipped image is encoded too. Disk caches use
        sd-scripts' file names and are reused when valid; ``files`` is the family's cache file layout
        (:class:`lora_compat.train.latents.LatentCacheFiles`, SD's by default).
        """
        import torch

        from lora_compat.train.latents import CachedLatents, LatentCacheFiles

        self.latent_files = files if files is not None else LatentCacheFiles(sdxl=self.sdxl)

        for ds in self.datasets:
            if not ds.latent_cacheable:
                raise UserError("cache_latents cannot be used with color_aug or random_crop (sd-scripts asserts "
                                "this): turn one of them off", key="cache_latents")
        encoded = 0
        center = random.Random(0)  # unused: random_crop is off when caching
        for ds in self.datasets:
            entries = sorted(ds.images.values(), key=lambda e: e.bucket_reso[0] * e.bucket_reso[1])  # type: ignore[index]
            todo: list[ImageEntry] = []
            for entry in entries:
                sub = entry.subset
                if to_disk:
                    entry.latents_npz = self.latent_files.path(entry.path, entry.image_size)
                    if self.latent_files.is_valid(entry.latents_npz, entry.bucket_reso,
                                                  flip_aug=bool(sub.get("flip_aug")),
                                                  alpha_mask=bool(sub.get("alpha_mask"))):
                        continue
                todo.append(entry)
            batches: list[list[ImageEntry]] = []
            for entry in todo:
                if batches and batches[-1][-1].bucket_reso == entry.bucket_reso and len(batches[-1]) < vae_batch_size:
                    batches[-1].append(entry)
                else:
                    batches.append([entry])
            for batch in batches:
                tensors, flips, infos = [], [], []
                for entry in batch:
                    sub = entry.subset
                    img = load_image(entry.path, alpha=bool(sub.get("alpha_mask")))
                    img, original, ltrb = trim_and_resize(img, entry.bucket_reso, entry.resized_size,  # type: ignore[arg-type]
                                                          random_crop=False, rng=center,
                                                          interpolation=sub.get("resize_interpolation"))
                    mask = None
                    if sub.get("alpha_mask"):
                        mask = torch.from_numpy(img[:, :, 3].astype("float32") / 255.0) if img.shape[2] == 4 \
                            else torch.ones(img.shape[0], img.shape[1])
                    tensors.append(to_tensor(img))
                    flips.append(to_tensor(img[:, ::-1, :].copy()) if sub.get("flip_aug") else None)
                    infos.append((original, ltrb, mask))
                with torch.no_grad():
                    lat = encode(torch.stack(tensors)).detach().float().cpu()
                    lat_f = None
                    if any(f is not None for f in flips):
                        flip_inputs = [f if f is not None else t for f, t in zip(flips, tensors, strict=True)]
                        lat_f = encode(torch.stack(flip_inputs))
                        lat_f = lat_f.detach().float().cpu()
                for k, entry in enumerate(batch):
                    original, ltrb, mask = infos[k]
                    flipped = lat_f[k] if lat_f is not None and flips[k] is not None else None
                    if torch.isnan(lat[k]).any() or (flipped is not None and torch.isnan(flipped).any()):
                        raise UserError(f"NaN latents for {entry.path!r} (VAE in fp16?); use a float32 VAE")
                    if to_disk:
                        self.latent_files.save(entry.latents_npz,
                                               CachedLatents(lat[k], original, ltrb, flipped, mask))
                    else:
                        entry.latents, entry.latents_flipped = lat[k], flipped
                        entry.latents_original_size, entry.latents_crop_ltrb = original, ltrb
                        entry.alpha_mask_cached = mask
                    encoded += 1
        return encoded

    @property
    def text_encoder_output_cacheable(self) -> bool:
        """sd-scripts' ``is_text_encoder_output_cacheable``: no subset shuffles, drops or warms up captions."""
        return all(not (s.caption.caption_dropout_rate > 0 or s.caption.shuffle_caption
                        or s.caption.token_warmup_step > 0 or s.caption.caption_tag_dropout_rate > 0)
                   for ds in self.datasets for s in ds.subsets)

    # ------------------------------------------------------------------------------------ metadata
    @property
    def num_train_images(self) -> int:
        return sum(ds.num_train_images for ds in self.datasets)

    @property
    def num_reg_images(self) -> int:
        """Regularization images x repeats *before* balancing (sd-scripts' ``ss_num_reg_images``)."""
        return sum(ds.num_reg_images for ds in self.datasets)

    @property
    def dataset_dirs(self) -> dict[str, dict[str, int]]:
        """``ss_dataset_dirs``: folder name -> ``{n_repeats, img_count}`` for every DreamBooth subset."""
        out: dict[str, dict[str, int]] = {}
        for ds in self.datasets:
            for sub in ds.subsets:
                folder = sub.get("image_dir")
                if folder is not None and ds.kind == DREAMBOOTH:
                    out[os.path.basename(os.path.normpath(str(folder)))] = {
                        "n_repeats": int(sub.get("num_repeats")), "img_count": sub.img_count}
        return out

    @property
    def tag_frequency(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for ds in self.datasets:
            out.update(ds.tag_frequency)
        return out

    @property
    def samples_per_epoch(self) -> int:
        """Images x repeats (after regularization balancing) over all datasets."""
        return sum(len(b) for ds in self.datasets for b in ds.buckets)


# ========================================================================================== entry point
def build_validation_dataset(source: Any, seed: int | None = None, *, sdxl: bool = False) -> TrainDataset | None:
    """The validation datasets of a plan (sd-scripts' ``generate_dataset_group_by_blueprint``): one for each
    dataset with ``0 < validation_split <= 1``, batched as training batches; None when there is none.

    A DreamBooth dataset gets its ``validation_split`` part (``is_training_dataset=False``: the held-out images,
    ``num_repeats`` 1, no regularization images). A fine-tune (``metadata_file`` / ``in_json``) dataset is built
    again as it is: sd-scripts' ``FineTuningDataset`` takes ``validation_split`` but splits nothing, so its
    validation images are the training images with their repeats (reference §4.2)."""
    seed = 0 if seed is None else int(seed)
    datasets = []
    for i, bp in enumerate(source.datasets):
        if not 0.0 < float(bp.params.get("validation_split") or 0.0) <= 1.0:
            continue
        params = dict(bp.params)
        params["seed"] = seed
        kind = FINETUNE if bp.kind == SPINE_FINETUNE else DREAMBOOTH
        ds = BucketedDataset(kind, params, bp.subsets, base_dir=source.base_dir, index=i, validation=True)
        if ds.images:
            datasets.append(ds)
    if not datasets:
        return None
    return TrainDataset(datasets, seed=seed, loader_workers=None, sdxl=sdxl)


def build_dataset(source: Any, seed: int | None = None, *, max_train_steps: int = 0,
                  tokenizers: Sequence[Callable[[str], Any]] = (), loader_workers: int | str | None = "plan",
                  sdxl: bool = False) -> TrainDataset:
    """The engine's dataset for a plan's :class:`~lora_compat.plan.parts.DatasetPlan` (or a list of subset dicts,
    built by :meth:`TrainDataset.from_subsets` with its defaults).

    ``seed`` defaults to 0. ``loader_workers="plan"`` emulates the plan's DataLoader worker lag (sd-scripts'
    ``min(max_data_loader_n_workers, os.cpu_count())`` workers); pass an int, or None to disable the lag.
    Relative folders are resolved against the plan's ``base_dir`` (the config file's folder) when they do not
    exist as given.
    """
    seed = 0 if seed is None else int(seed)
    if isinstance(source, (list, tuple)):
        # plain subset dicts (sd-scripts dataset-config keys); dataset keys via TrainDataset.from_subsets
        return TrainDataset.from_subsets(source, seed=seed, max_train_steps=max_train_steps, tokenizers=tokenizers,
                                         loader_workers=None if loader_workers == "plan" else loader_workers,
                                         sdxl=sdxl)
    datasets = []
    for i, bp in enumerate(source.datasets):
        kind = FINETUNE if bp.kind == SPINE_FINETUNE else DREAMBOOTH
        params = dict(bp.params)
        params["seed"] = seed
        datasets.append(BucketedDataset(kind, params, bp.subsets, base_dir=source.base_dir, index=i))
    persistent = False
    if loader_workers == "plan":
        # train_network.py: n_workers = min(max_data_loader_n_workers, os.cpu_count())
        loader_workers = min(int(source.loader_workers), os.cpu_count() or 1)
        persistent = bool(source.persistent_workers)
    return TrainDataset(datasets, seed=seed, max_train_steps=max_train_steps, tokenizers=tokenizers,
                        loader_workers=loader_workers, persistent_workers=persistent,  # type: ignore[arg-type]
                        sdxl=sdxl)


def shard_batches(n: int, world: int, rank: int) -> list[int]:
    """This process's batch indices: every ``world``-th batch, padded from the start so that every process runs
    the same number of steps (as accelerate's even_batches does)."""
    idx = list(range(n))
    per = math.ceil(n / world)
    idx += idx[: per * world - n]
    return idx[rank::world]


class DatasetCheckpoint:
    """Saves/restores the dataset's random streams with accelerate's state, so a resumed run fetches exactly
    the batches (captions, flips, crops) an uninterrupted one would."""

    _FIELDS = ("announced_epoch", "announced_step", "_views", "_no_lag_view", "_perm")

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def state_dict(self) -> dict[str, Any]:
        if hasattr(self.dataset, "state_dict"):
            return {"dataset": self.dataset.state_dict()}
        return {"pickle": pickle.dumps({f: getattr(self.dataset, f) for f in self._FIELDS if hasattr(self.dataset, f)})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "dataset" in state:
            self.dataset.load_state_dict(state["dataset"])
            return
        # Written by state_dict above; only ever read from a folder the user named with --resume.
        for k, v in pickle.loads(state["pickle"]).items():
            setattr(self.dataset, k, v)
