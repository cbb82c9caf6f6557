"""What a dataset holds on disk: sd-scripts' DreamBooth / fine-tune dataset construction and buckets.

torch-free (PIL only reads image headers, lazily): ``plan`` counts the batches of an epoch with it, and the
training engine's dataset (:mod:`lora_compat.train.dataset`) builds its batches on it, so both see the same
images, repeats and buckets. Reference sections (sd-scripts-reference.md):

* §4.1 DreamBooth construction: non-recursive sorted image listing (``.png .jpg .jpeg .webp .bmp`` and their
  upper-case forms), the same ``image_dir`` twice in a dataset is skipped, ``num_repeats < 1`` skips a
  subset, captions from ``<stem><caption_extension>`` (or the face-crop stem), else ``class_tokens``, else
  ``""``; an empty caption file is an error; regularization images balanced to the training count by
  extra repeats (the first reg images in sorted order win); with ``validation_split`` the training part of
  each non-reg subset (shuffled with ``random.Random(validation_seed)``, first ``ceil(n*(1-split))`` kept;
  without a validation seed sd-scripts uses its global RNG, here the dataset ``seed``).
* §4.2 fine-tune subsets (``metadata_file`` JSON / JSONL; tags appended with ``caption_separator``).
* §4.6 buckets: :class:`lora_compat.semantics.BucketSelector`; §4.7 batches: every image ``num_repeats``
  times in its bucket, ``ceil(n / batch_size)`` batches per bucket; ``len()`` = batches per epoch.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lora_compat.config.dataset import DATASET_PARAMS, SUBSET_PARAMS, parse_resolution
from lora_compat.config.dataset import DREAMBOOTH as SPINE_DREAMBOOTH
from lora_compat.config.dataset import FINETUNE as SPINE_FINETUNE
from lora_compat.config.kohya_folder import IMAGE_EXTENSIONS, IMAGE_EXTS, image_files
from lora_compat.errors import UserError
from lora_compat.semantics import BucketSelector, CaptionParams, round_bucket_limits
from lora_compat.semantics.steps import balance_regularization

__all__ = [
    "DREAMBOOTH",
    "FINETUNE",
    "IMAGE_EXTENSIONS",
    "RESIZE_INTERPOLATIONS",
    "BucketedDataset",
    "ImageEntry",
    "SubsetSpec",
    "list_images",
    "read_caption",
]

RESIZE_INTERPOLATIONS = ("lanczos", "nearest", "bilinear", "linear", "bicubic", "cubic", "area", "box")
DREAMBOOTH, FINETUNE = "dreambooth", "finetune"

# sd-scripts' subset / dataset defaults, from the spine's blueprint tables (one place for them).
_SUBSET_DEFAULTS: dict[str, Any] = {**SUBSET_PARAMS[SPINE_FINETUNE], **SUBSET_PARAMS[SPINE_DREAMBOOTH]}
_DATASET_DEFAULTS: dict[str, Any] = dict(DATASET_PARAMS[SPINE_DREAMBOOTH])



# =========================================================================================== structures
@dataclass
class SubsetSpec:
    """One subset's resolved parameters (sd-scripts dataset-config keys) and its caption parameters."""

    index: int
    params: dict[str, Any]
    caption: CaptionParams
    img_count: int = 0

    def get(self, name: str) -> Any:
        value = self.params.get(name)
        return _SUBSET_DEFAULTS.get(name) if value is None else value

    @property
    def is_reg(self) -> bool:
        return bool(self.get("is_reg"))


@dataclass
class ImageEntry:
    """One registered image (sd-scripts ``ImageInfo``)."""

    key: str                                   # absolute path (unique within a dataset)
    path: str
    caption: str                               # raw caption (before per-fetch processing)
    subset: SubsetSpec
    num_repeats: int
    image_size: tuple[int, int] | None = None  # (w, h)
    bucket_reso: tuple[int, int] | None = None
    resized_size: tuple[int, int] | None = None
    latents: Any = None                        # cached in memory (C,h,w tensor) or None
    latents_flipped: Any = None
    alpha_mask_cached: Any = None
    latents_original_size: tuple[int, int] | None = None
    latents_crop_ltrb: tuple[int, int, int, int] | None = None
    latents_npz: str | None = None             # disk cache to load per fetch



def split_train_val(paths: list[str], split: float, validation_seed: int | None, seed: int, *,
                    validation: bool) -> list[str]:
    """sd-scripts' ``split_train_val``: the image list shuffled with ``validation_seed`` (sd-scripts uses its global
    RNG without one; here ``seed``), the training part the first ``ceil(n * (1 - split))`` images, the validation
    part the last ``round(n * split)`` (Python's round: the two parts can overlap by one image, as in sd-scripts)."""
    paths = list(paths)
    random.Random(validation_seed if validation_seed is not None else seed).shuffle(paths)
    if validation:
        return paths[len(paths) - round(len(paths) * split):]
    return paths[:math.ceil(len(paths) * (1.0 - split))]


# ========================================================================================= one dataset
class BucketedDataset:
    """One sd-scripts dataset (``DreamBoothDataset`` or ``FineTuningDataset``): images, buckets, batches."""

    def __init__(self, kind: str, params: Mapping[str, Any], subsets: Sequence[Mapping[str, Any]], *,
                 base_dir: str | None = None, index: int = 0, validation: bool = False) -> None:
        self.kind = kind
        self.index = index
        self.validation = validation   # the held-out part of validation_split (sd-scripts' is_training_dataset False)
        self.params = {**_DATASET_DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
        self.base_dir = base_dir
        resolution = parse_resolution(self.params["resolution"])
        if resolution is None:
            raise UserError("resolution is not set (sd-scripts asserts it for every dataset)",
                            key=f"datasets[{index}].resolution")
        if (not isinstance(resolution, list) or len(resolution) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resolution)):
            raise UserError(f"resolution {self.params['resolution']!r} is not W or W,H (positive integers)",
                            key=f"datasets[{index}].resolution")
        self.width, self.height = resolution
        self.batch_size = max(1, int(self.params["batch_size"]))
        plw = self.params.get("prior_loss_weight")
        self.prior_loss_weight = 1.0 if plw is None else float(plw)   # 0 is a valid weight
        self.enable_bucket = bool(self.params["enable_bucket"])
        if self.enable_bucket:
            steps = int(self.params["bucket_reso_steps"])
            lo, hi = round_bucket_limits(int(self.params["min_bucket_reso"]), int(self.params["max_bucket_reso"]),
                                         steps)
            if min(self.width, self.height) < lo or max(self.width, self.height) > hi:
                raise UserError(f"resolution {self.width}x{self.height} must lie within min_bucket_reso {lo} "
                                f"and max_bucket_reso {hi} (sd-scripts asserts this)",
                                key=f"datasets[{index}].resolution")
            self.selector = BucketSelector((self.width, self.height), min_bucket_reso=lo, max_bucket_reso=hi,
                                           bucket_reso_steps=steps,
                                           no_upscale=bool(self.params["bucket_no_upscale"]))
        else:
            self.selector = BucketSelector((self.width, self.height), bucket_reso_steps=None,
                                           predefined=[(self.width, self.height)])
        self.subsets: list[SubsetSpec] = []
        self.images: dict[str, ImageEntry] = {}
        self.num_train_images = 0
        self.num_reg_images = 0
        self.tag_frequency: dict[str, dict[str, int]] = {}
        if kind == FINETUNE:
            self._load_finetune(subsets)
        else:
            self._load_dreambooth(subsets)
        self.resos: list[tuple[int, int]] = []
        self.buckets: list[list[str]] = []
        self.bucket_indices: list[tuple[int, int]] = []

    # ------------------------------------------------------------------------------------ construction
    def _subset(self, i: int, raw: Mapping[str, Any]) -> SubsetSpec:
        params = dict(raw)
        ext = params.get("caption_extension")
        if isinstance(ext, str) and ext and not ext.startswith("."):
            params["caption_extension"] = "." + ext
        interp = params.get("resize_interpolation") or self.params.get("resize_interpolation")
        if interp is not None and interp not in RESIZE_INTERPOLATIONS:
            raise UserError(f"resize_interpolation {interp!r} is not one of {', '.join(RESIZE_INTERPOLATIONS)}",
                            key=f"datasets[{self.index}].subsets[{i}].resize_interpolation")
        params["resize_interpolation"] = interp
        if params.get("caption_separator") == "":
            raise UserError("caption_separator must not be empty (sd-scripts splits captions on it)",
                            key=f"datasets[{self.index}].subsets[{i}].caption_separator")
        return SubsetSpec(i, params, CaptionParams.from_mapping(params))

    def _image_dir(self, sub: SubsetSpec) -> str | None:
        folder = sub.get("image_dir")
        if folder is None:
            return None
        folder = str(folder)
        if not os.path.isabs(folder) and not os.path.isdir(folder) and self.base_dir:
            candidate = os.path.join(self.base_dir, folder)
            if os.path.isdir(candidate):
                folder = candidate
        return folder

    def _load_dreambooth(self, raw_subsets: Sequence[Mapping[str, Any]]) -> None:
        seen_dirs: set[str] = set()
        reg_entries: list[ImageEntry] = []
        for i, raw in enumerate(raw_subsets):
            sub = self._subset(i, raw)
            repeats = int(sub.get("num_repeats"))
            folder = self._image_dir(sub)
            where = f"datasets[{self.index}].subsets[{i}]"
            if repeats < 1 or folder is None:
                continue  # sd-scripts skips such subsets with a warning
            if folder in seen_dirs:
                continue  # the same image_dir twice in one dataset is skipped
            if self.validation:
                repeats = 1  # sd-scripts: num_repeats is 1 in the validation dataset
            if not os.path.isdir(folder):
                raise UserError(f"image_dir {folder!r} is not a folder", key=f"{where}.image_dir")
            seen_dirs.add(folder)
            paths = list_images(folder)
            split = float(self.params.get("validation_split") or 0.0)
            if 0.0 < split <= 1.0 and not sub.is_reg:
                paths = split_train_val(paths, split, self.params.get("validation_seed"), self.params.get("seed", 0),
                                        validation=self.validation)
            elif self.validation:
                paths = []   # regularization images are never validated; no split, no validation images
            sub.img_count = len(paths)
            self.subsets.append(sub)
            tags = self.tag_frequency.setdefault(os.path.basename(os.path.normpath(folder)), {})
            for path in paths:
                caption = read_caption(path, str(sub.get("caption_extension")), bool(sub.get("enable_wildcard")),
                                       key=f"{where}.caption_extension")
                if caption is None:
                    class_tokens = sub.get("class_tokens")
                    caption = class_tokens if class_tokens is not None else ""
                _count_tags(tags, caption)
                entry = ImageEntry(os.path.abspath(path), path, caption, sub, repeats)
                if sub.is_reg:
                    reg_entries.append(entry)
                else:
                    self.images[entry.key] = entry
            if sub.is_reg:
                self.num_reg_images += repeats * len(paths)
            else:
                self.num_train_images += repeats * len(paths)
        self._balance_reg(reg_entries)

    def _balance_reg(self, reg_entries: list[ImageEntry]) -> None:
        repeats = balance_regularization([e.num_repeats for e in reg_entries], self.num_train_images)
        for entry, n in zip(reg_entries, repeats, strict=True):
            if n:
                entry.num_repeats = n
                self.images.setdefault(entry.key, entry)

    def _load_finetune(self, raw_subsets: Sequence[Mapping[str, Any]]) -> None:
        for i, raw in enumerate(raw_subsets):
            sub = self._subset(i, raw)
            where = f"datasets[{self.index}].subsets[{i}]"
            repeats = int(sub.get("num_repeats"))
            if repeats < 1:
                continue
            meta_path = str(sub.get("metadata_file"))
            if self.base_dir and not os.path.isabs(meta_path) and not os.path.exists(meta_path):
                meta_path = os.path.join(self.base_dir, meta_path)
            metadata = _read_metadata(meta_path, f"{where}.metadata_file")
            if not metadata:
                continue
            folder = self._image_dir(sub)
            sep = str(sub.get("caption_separator"))
            tags_freq = self.tag_frequency.setdefault(os.path.basename(meta_path), {})
            count = 0
            for key, item in metadata.items():
                path = key if os.path.isabs(key) else None
                if path is None:
                    if folder is None:
                        raise UserError(f"metadata key {key!r} is relative but image_dir is not set",
                                        key=f"{where}.image_dir")
                    path = os.path.join(folder, key)
                if not os.path.exists(path):
                    # sd-scripts also accepts keys without extension: try the image extensions
                    for ext in IMAGE_EXTS:
                        if os.path.exists(path + ext):
                            path = path + ext
                            break
                    else:
                        raise UserError(f"image {path!r} listed in {meta_path} does not exist",
                                        key=f"{where}.metadata_file")
                caption = item.get("caption") or ""
                tags = item.get("tags") or ""
                if sub.get("enable_wildcard"):
                    tags = tags.replace("\n", sep)
                    if tags:
                        caption = "\n".join(line + sep + tags for line in caption.split("\n") if line.strip())
                elif tags:
                    caption = caption + (sep if caption else "") + tags
                for tag in (t.strip().lower() for t in (item.get("tags") or "").split(",")):
                    if tag:
                        tags_freq[tag] = tags_freq.get(tag, 0) + 1
                size = item.get("image_size")
                entry = ImageEntry(os.path.abspath(path), path, caption, sub, repeats,
                                   image_size=(int(size[0]), int(size[1])) if size else None)
                self.images[entry.key] = entry
                count += 1
            sub.img_count = count
            self.subsets.append(sub)
            self.num_train_images += repeats * count

    # ---------------------------------------------------------------------------------------- buckets
    def make_buckets(self) -> None:
        """Assign every image to a bucket and build the batch list (``BaseDataset.make_buckets``)."""
        from PIL import Image

        for entry in self.images.values():
            if entry.image_size is None:
                try:
                    with Image.open(entry.path) as im:
                        entry.image_size = (int(im.width), int(im.height))
                except OSError as exc:
                    raise UserError(f"cannot read image {entry.path!r}: {exc}") from None
        chosen: dict[str, tuple[int, int]] = {}  # image key -> its bucket
        for entry in self.images.values():
            assert entry.image_size is not None  # read above
            bucket, entry.resized_size, _ = self.selector.select(*entry.image_size)
            entry.bucket_reso = chosen[entry.key] = bucket
        resos = sorted(set(self.selector.predefined) | set(chosen.values()))
        self.resos = resos
        reso_id = {r: i for i, r in enumerate(resos)}
        self.buckets = [[] for _ in resos]
        for entry in self.images.values():
            for _ in range(entry.num_repeats):
                self.buckets[reso_id[chosen[entry.key]]].append(entry.key)
        self.bucket_indices = [(b, k) for b, bucket in enumerate(self.buckets)
                               for k in range(math.ceil(len(bucket) / self.batch_size))]

    def __len__(self) -> int:
        return len(self.bucket_indices)

    @property
    def bucket_info(self) -> dict[str, Any]:
        """``ss_bucket_info``-like summary: non-empty buckets with their image counts (repeats included)."""
        return {"buckets": {i: {"resolution": list(r), "count": len(b)}
                            for i, (r, b) in enumerate(zip(self.resos, self.buckets, strict=True)) if b}}

    @property
    def latent_cacheable(self) -> bool:
        return all(not s.get("color_aug") and not s.get("random_crop") for s in self.subsets)


# ============================================================================================ file I/O
def list_images(folder: str) -> list[str]:
    """sd-scripts' ``glob_images`` (:func:`lora_compat.config.kohya_folder.image_files`); a folder that cannot
    be listed is a UserError."""
    try:
        return image_files(folder)
    except OSError as exc:
        raise UserError(f"cannot list image_dir {folder!r}: {exc}") from None


def read_caption(image_path: str, caption_extension: str, enable_wildcard: bool, *, key: str | None = None
                 ) -> str | None:
    """The caption file of an image as sd-scripts reads it, or None when there is none.

    Candidates: ``<path without extension><ext>``, then the same with the last four ``_`` tokens removed
    (face-crop names). With ``enable_wildcard`` all non-blank lines joined with ``\\n``, else the first line
    stripped. An empty file or a non-UTF-8 file is an error (sd-scripts raises).
    """
    base = os.path.splitext(image_path)[0]
    tokens = base.split("_")
    face_base = "_".join(tokens[:-4]) if len(tokens) >= 5 else base
    for cap_path in (base + caption_extension, face_base + caption_extension):
        if os.path.isfile(cap_path):
            try:
                with open(cap_path, encoding="utf-8") as fh:
                    lines = fh.readlines()
            except UnicodeDecodeError:
                raise UserError("caption file is not UTF-8", file=cap_path, key=key) from None
            if not lines:
                raise UserError("caption file is empty (sd-scripts stops on it)", file=cap_path, key=key)
            if enable_wildcard:
                return "\n".join(line.strip() for line in lines if line.strip() != "")
            return lines[0].strip()
    return None


def _read_metadata(path: str, key: str) -> dict[str, dict[str, Any]]:
    if not os.path.exists(path):
        raise UserError("metadata file does not exist", file=path, key=key)
    try:
        with open(path, encoding="utf-8") as fh:
            if path.endswith(".jsonl"):
                out: dict[str, dict[str, Any]] = {}
                for line in fh:
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    out[item["image_path"]] = {"caption": item.get("caption", ""), "tags": item.get("tags"),
                                               "image_size": item.get("image_size")}
                return out
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno, col=exc.colno, key=key) from None
    except (KeyError, UnicodeDecodeError) as exc:
        raise UserError(f"invalid metadata entry: {exc}", file=path, key=key) from None
    if not isinstance(data, dict):
        raise UserError("metadata must be a JSON object {image: {caption, tags, ...}}", file=path, key=key)
    return {k: (v if isinstance(v, dict) else {}) for k, v in data.items()}


def _count_tags(freq: dict[str, int], caption: str) -> None:
    # sd-scripts splits on "," whatever caption_separator is, lower-cases, drops empty tags.
    for tag in (t.strip().lower() for t in caption.split(",")):
        if tag:
            freq[tag] = freq.get(tag, 0) + 1
