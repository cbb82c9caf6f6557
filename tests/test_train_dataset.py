"""The engine dataset (lora_compat.train.dataset) on tiny images made here: sd-scripts' construction,
captions, buckets, crops, augmentations, epoch/step lag and latent caching."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from lora_compat.errors import UserError  # noqa: E402
from lora_compat.semantics import crop_ltrb  # noqa: E402
from lora_compat.train.dataset import TrainDataset, build_dataset, list_images, read_caption, trim_and_resize  # noqa: E402
from lora_compat.train.latents import latents_npz_path  # noqa: E402


def _img(path: Path, w: int, h: int, seed: int = 0, mode: str = "RGB") -> np.ndarray:
    arr = np.random.RandomState(seed).randint(0, 256, (h, w, len(mode)), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)
    return arr


def _pixels(t: torch.Tensor) -> np.ndarray:
    """Back from [-1, 1] CHW to uint8 HWC."""
    return np.round((t.permute(1, 2, 0).numpy() + 1.0) * 127.5).astype(np.uint8)


@pytest.fixture()
def kohya(tmp_path: Path) -> Path:
    """train/3_sks dog (2 images, one captioned), reg/1_dog (1 image)."""
    _img(tmp_path / "train" / "3_sks dog" / "a.png", 64, 64, 1)
    _img(tmp_path / "train" / "3_sks dog" / "b.png", 64, 64, 2)
    (tmp_path / "train" / "3_sks dog" / "a.caption").write_text("sks dog, red collar\nsecond line\n", "utf-8")
    _img(tmp_path / "reg" / "1_dog" / "r.png", 64, 64, 3)
    return tmp_path


def _subsets(root: Path, **extra) -> list[dict]:
    return [{"image_dir": str(root / "train" / "3_sks dog"), "num_repeats": 3, "class_tokens": "sks dog", **extra},
            {"image_dir": str(root / "reg" / "1_dog"), "num_repeats": 1, "class_tokens": "dog", "is_reg": True}]


def _all_batches(ds: TrainDataset, epoch: int = 1) -> list[dict]:
    ds.set_epoch(epoch)
    return [ds[i] for i in range(len(ds))]


# ------------------------------------------------------------------------------------------ construction
def test_dreambooth_counts_reg_balancing_and_loss_weights(kohya: Path) -> None:
    # loader_workers=None: no epoch lag, so one epoch visits every sample exactly once
    ds = TrainDataset.from_subsets(_subsets(kohya), resolution=(64, 64), batch_size=2, prior_loss_weight=0.5,
                                   loader_workers=None)
    assert ds.num_train_images == 6 and ds.num_reg_images == 1
    # the one reg image is repeated until it matches the 6 training samples
    assert ds.samples_per_epoch == 12 and len(ds) == 6
    weights = torch.cat([b["loss_weights"] for b in _all_batches(ds)])
    assert sorted(weights.tolist()) == [0.5] * 6 + [1.0] * 6
    assert ds.dataset_dirs == {"3_sks dog": {"n_repeats": 3, "img_count": 2},
                               "1_dog": {"n_repeats": 1, "img_count": 1}}
    assert ds.tag_frequency["3_sks dog"] == {"sks dog": 2, "red collar": 1}


def test_surplus_reg_images_are_never_used(tmp_path: Path) -> None:
    _img(tmp_path / "t" / "x.png", 32, 32)
    for i in range(4):
        _img(tmp_path / "r" / f"r{i}.png", 32, 32, i)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "t"), "num_repeats": 2},
                                    {"image_dir": str(tmp_path / "r"), "is_reg": True}], resolution=32)
    used = {os.path.basename(k) for k in ds.datasets[0].images}
    assert used == {"x.png", "r0.png", "r1.png"}
    assert ds.num_reg_images == 4 and ds.samples_per_epoch == 4


def test_subset_skips_and_listing(tmp_path: Path) -> None:
    _img(tmp_path / "d" / "a.PNG", 32, 32)
    _img(tmp_path / "d" / "b.Png", 32, 32)        # mixed case is not listed by sd-scripts
    (tmp_path / "d" / "notes.txt").write_text("x")
    _img(tmp_path / "d" / "sub" / "c.png", 32, 32)  # not recursive
    assert [os.path.basename(p) for p in list_images(str(tmp_path / "d"))] == ["a.PNG"]
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d")}, {"image_dir": str(tmp_path / "d")},
                                    {"image_dir": str(tmp_path / "d"), "num_repeats": 0}], resolution=32)
    assert len(ds.datasets[0].subsets) == 1 and ds.samples_per_epoch == 1


def test_missing_folder_and_no_images_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a folder"):
        TrainDataset.from_subsets([{"image_dir": str(tmp_path / "nope")}], resolution=32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no training images"):
        TrainDataset.from_subsets([{"image_dir": str(tmp_path / "empty")}], resolution=32)


# --------------------------------------------------------------------------------------------- captions
def test_caption_sources(tmp_path: Path) -> None:
    img = tmp_path / "p_1_2_3_4.png"
    _img(img, 8, 8)
    assert read_caption(str(img), ".txt", False) is None
    # face-crop naming: the caption of "p" serves "p_1_2_3_4"
    (tmp_path / "p.txt").write_text("  first line \nsecond\n\n", "utf-8")
    assert read_caption(str(img), ".txt", False) == "first line"
    assert read_caption(str(img), ".txt", True) == "first line\nsecond"
    (tmp_path / "p_1_2_3_4.txt").write_text("", "utf-8")
    with pytest.raises(UserError, match="empty"):
        read_caption(str(img), ".txt", False)
    (tmp_path / "p_1_2_3_4.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(UserError, match="UTF-8"):
        read_caption(str(img), ".txt", False)


def test_captions_are_processed_per_fetch_with_prefix_and_class_tokens(kohya: Path) -> None:
    subs = _subsets(kohya, caption_prefix="photo of", caption_extension="caption")
    ds = TrainDataset.from_subsets(subs, resolution=64, loader_workers=None)
    captions = {c for b in _all_batches(ds) for c in b["captions"]}
    assert captions == {"photo of sks dog, red collar", "photo of sks dog", "dog"}


def test_epoch_lag_main_process_and_workers(tmp_path: Path) -> None:
    for i in range(4):
        _img(tmp_path / "d" / f"{i}.png", 32, 32, i)
    sub = [{"image_dir": str(tmp_path / "d"), "class_tokens": "tok", "caption_dropout_every_n_epochs": 2}]

    def dropped(ds: TrainDataset, epoch: int) -> list[bool]:
        return [b["captions"] == [""] for b in _all_batches(ds, epoch)]

    no_lag = TrainDataset.from_subsets(sub, resolution=32, loader_workers=None)
    assert dropped(no_lag, 1) == [False] * 4 and dropped(no_lag, 2) == [True] * 4
    main = TrainDataset.from_subsets(sub, resolution=32, loader_workers=0)
    # the first item of each epoch still sees the previous epoch (0 at the start: 0 % 2 == 0 -> dropped)
    assert dropped(main, 1) == [True, False, False, False]
    assert dropped(main, 2) == [False, True, True, True]
    workers = TrainDataset.from_subsets(sub, resolution=32, loader_workers=2)
    # non-persistent workers restart from epoch 0 every epoch: their first batches are always dropped
    assert dropped(workers, 1) == [True, True, False, False]
    assert dropped(workers, 3) == [True, True, False, False]
    persistent = TrainDataset.from_subsets(sub, resolution=32, loader_workers=2, persistent_workers=True)
    assert dropped(persistent, 1) == [True, True, False, False]
    assert dropped(persistent, 2) == [False, False, True, True]


def test_token_warmup_follows_current_step(tmp_path: Path) -> None:
    _img(tmp_path / "d" / "a.png", 32, 32)
    (tmp_path / "d" / "a.txt").write_text("a, b, c, d, e", "utf-8")
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d"), "caption_extension": ".txt",
                                     "token_warmup_step": 0.5, "token_warmup_min": 1}],
                                   resolution=32, loader_workers=None, max_train_steps=10)
    ds.set_epoch(1)
    ds.set_current_step(0)
    assert ds[0]["captions"] == ["a"]
    ds.set_current_step(5)
    assert ds[0]["captions"] == ["a, b, c, d, e"]


# ---------------------------------------------------------------------------------------------- buckets
def test_buckets_batches_never_mix_and_len_counts_partial_batches(tmp_path: Path) -> None:
    sizes = [(64, 64)] * 3 + [(256, 64)] * 2 + [(32, 128)]
    for i, (w, h) in enumerate(sizes):
        _img(tmp_path / "d" / f"{i}.png", w, h, i)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d")}], resolution=64, batch_size=2,
                                   enable_bucket=True,
                                   dataset_params={"min_bucket_reso": 32, "max_bucket_reso": 128,
                                                   "bucket_reso_steps": 32}, loader_workers=None)
    # buckets 64x64 (3 -> 2 batches), 128x32 (2 -> 1), 32x128 (1 -> 1)
    assert len(ds) == 4
    seen = []
    for b in _all_batches(ds):
        w, h = b["bucket"]
        assert b["images"].shape[2:] == (h, w)
        assert all(t == (h, w) for t in b["target_sizes"])
        seen.append(((w, h), len(b["captions"])))
    assert sorted(seen) == [((32, 128), 1), ((64, 64), 1), ((64, 64), 2), ((128, 32), 2)]


def test_trim_and_resize_center_crop_and_letterbox_conditioning() -> None:
    import random

    arr = np.zeros((40, 100, 3), dtype=np.uint8)
    arr[:, :, 0] = np.arange(100, dtype=np.uint8)[None, :]     # red = column index
    out, original, ltrb = trim_and_resize(arr, (80, 40), (100, 40), random_crop=False, rng=random.Random(0))
    assert out.shape == (40, 80, 3) and original == (100, 40)
    assert out[0, 0, 0] == 10 and out[0, -1, 0] == 89            # trimmed 20 columns, 10 each side
    assert ltrb == crop_ltrb((80, 40), (100, 40)) == (0, 4, 80, 36)  # letterbox, not the real crop
    starts = {int(trim_and_resize(arr, (80, 40), (100, 40), random_crop=True, rng=random.Random(s))[0][0, 0, 0])
              for s in range(30)}
    assert len(starts) > 3 and min(starts) >= 0 and max(starts) <= 20


def test_resize_uses_lanczos_when_growing_and_box_when_shrinking() -> None:
    import random

    arr = np.random.RandomState(0).randint(0, 256, (20, 30, 3), dtype=np.uint8)
    out, _, _ = trim_and_resize(arr, (56, 40), (60, 40), random_crop=False, rng=random.Random(0))
    grown = np.asarray(Image.fromarray(arr).resize((60, 40), Image.Resampling.LANCZOS))
    assert np.array_equal(out, grown[:, 2:58])
    out, _, _ = trim_and_resize(arr, (15, 10), (15, 10), random_crop=False, rng=random.Random(0))
    assert np.array_equal(out, np.asarray(Image.fromarray(arr).resize((15, 10), Image.Resampling.BOX)))


def test_flip_and_sdxl_crop_conditioning(tmp_path: Path) -> None:
    arr = _img(tmp_path / "d" / "a.png", 64, 32, 5)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d"), "flip_aug": True}], resolution=(64, 32),
                                   loader_workers=None)
    flips = set()
    for epoch in range(1, 12):
        b = _all_batches(ds, epoch)[0]
        px = _pixels(b["images"][0])
        if b["flipped"][0]:
            assert np.array_equal(px, arr[:, ::-1])
        else:
            assert np.array_equal(px, arr)
        assert b["original_sizes"] == [(32, 64)]
        # sd-scripts without bucketing: crop_ltrb (0,0,0,0), so a flipped image reports left = target_w
        assert b["crop_top_lefts"] == [(0, 64) if b["flipped"][0] else (0, 0)]
        flips.add(b["flipped"][0])
    assert flips == {True, False}


def test_no_bucketing_requires_exact_size_or_random_crop(tmp_path: Path) -> None:
    _img(tmp_path / "small" / "a.png", 16, 16)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "small")}], resolution=32)
    with pytest.raises(UserError, match="smaller than resolution"):
        _all_batches(ds)
    _img(tmp_path / "big" / "a.png", 48, 40)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "big")}], resolution=32)
    with pytest.raises(UserError, match="random_crop"):
        _all_batches(ds)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "big"), "random_crop": True}], resolution=32)
    assert _all_batches(ds)[0]["images"].shape == (1, 3, 32, 32)


def test_color_aug_and_alpha_mask(tmp_path: Path) -> None:
    rgba = _img(tmp_path / "d" / "a.png", 32, 32, 7, mode="RGBA")
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d"), "alpha_mask": True, "color_aug": True}],
                                   resolution=32, loader_workers=None)
    changed = 0
    for epoch in range(1, 16):
        b = _all_batches(ds, epoch)[0]
        assert torch.allclose(b["alpha_masks"][0], torch.from_numpy(rgba[:, :, 3] / 255.0).float())
        changed += not np.array_equal(_pixels(b["images"][0]), rgba[:, :, :3])
    assert 0 < changed < 15       # color_aug fires with p = 0.33


def test_same_seed_same_batches_and_epochs_reshuffle(tmp_path: Path) -> None:
    for i in range(6):
        _img(tmp_path / "d" / f"{i}.png", 32, 32, i)
    sub = [{"image_dir": str(tmp_path / "d"), "shuffle_caption": True, "class_tokens": "a, b, c, d"}]

    def order(seed: int, epoch: int) -> list:
        ds = TrainDataset.from_subsets(sub, resolution=32, seed=seed)
        return [(tuple(b["captions"]), b["images"].sum().item()) for b in _all_batches(ds, epoch)]

    assert order(3, 1) == order(3, 1)
    assert order(3, 1) != order(4, 1)
    assert order(3, 1) != order(3, 2)


# --------------------------------------------------------------------------------------------- fine-tune
def test_finetune_metadata_subset(tmp_path: Path) -> None:
    _img(tmp_path / "imgs" / "a.png", 32, 32)
    _img(tmp_path / "imgs" / "b.png", 32, 32, 1)
    meta = {"a.png": {"caption": "a cat", "tags": "cute, indoor"}, "b": {"tags": "dog"}}
    (tmp_path / "meta.json").write_text(json.dumps(meta), "utf-8")
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "imgs"), "metadata_file": str(tmp_path / "meta.json"),
                                     "num_repeats": 2}], resolution=32, loader_workers=None)
    assert ds.datasets[0].kind == "finetune" and ds.samples_per_epoch == 4
    assert {c for b in _all_batches(ds) for c in b["captions"]} == {"a cat,cute, indoor", "dog"}
    (tmp_path / "bad.json").write_text("{", "utf-8")
    with pytest.raises(UserError, match="invalid JSON"):
        TrainDataset.from_subsets([{"image_dir": str(tmp_path / "imgs"), "metadata_file": str(tmp_path / "bad.json")}],
                                  resolution=32)


# ------------------------------------------------------------------------------------------- latents
def _encode(x: torch.Tensor) -> torch.Tensor:
    """A deterministic stand-in VAE: 8x8 average pooling, 4 channels."""
    pooled = torch.nn.functional.avg_pool2d(x, 8)
    return torch.cat([pooled, pooled[:, :1]], dim=1)


def test_latent_cache_in_memory_and_on_disk(tmp_path: Path) -> None:
    _img(tmp_path / "d" / "a.png", 96, 64, 1)
    _img(tmp_path / "d" / "b.png", 64, 64, 2)
    sub = [{"image_dir": str(tmp_path / "d"), "flip_aug": True}]
    params = {"min_bucket_reso": 32, "max_bucket_reso": 128, "bucket_reso_steps": 32}

    mem = TrainDataset.from_subsets(sub, resolution=64, enable_bucket=True, dataset_params=params,
                                    loader_workers=None)
    plain = TrainDataset.from_subsets(sub, resolution=64, enable_bucket=True, dataset_params=params,
                                      loader_workers=None)
    assert mem.cache_latents(_encode) == 2
    for b_cached, b_plain in zip(_all_batches(mem), _all_batches(plain), strict=True):
        assert "images" not in b_cached and b_cached["latents"].shape[1:] == (4, 8, 8)
        assert "latents" not in b_plain
        # same RNG stream -> same flip decisions -> latents equal the encoding of the uncached image
        assert b_cached["flipped"] == b_plain["flipped"]
        assert torch.allclose(b_cached["latents"], _encode(b_plain["images"]), atol=1e-5)
        assert b_cached["crop_top_lefts"] == b_plain["crop_top_lefts"]
        assert b_cached["target_sizes"] == b_plain["target_sizes"]

    disk = TrainDataset.from_subsets(sub, resolution=64, enable_bucket=True, dataset_params=params)
    assert disk.cache_latents(_encode, to_disk=True) == 2
    expected = latents_npz_path(str(tmp_path / "d" / "a.png"), (96, 64), sdxl=False)
    assert expected.endswith("a_0096x0064_sd.npz") and os.path.exists(expected)
    with np.load(expected) as npz:
        assert set(npz.files) == {"latents", "original_size", "crop_ltrb", "latents_flipped"}
        assert npz["latents"].shape == (4, 8, 8) and list(npz["original_size"]) == [96, 64]
    again = TrainDataset.from_subsets(sub, resolution=64, enable_bucket=True, dataset_params=params)
    assert again.cache_latents(_encode, to_disk=True) == 0            # valid caches are reused
    assert _all_batches(again)[0]["latents"].shape[1:] == (4, 8, 8)
    bigger = TrainDataset.from_subsets(sub, resolution=128, enable_bucket=True,
                                       dataset_params={**params, "max_bucket_reso": 256})
    assert bigger.cache_latents(_encode, to_disk=True) == 2           # stale shapes are re-encoded


def test_latent_cache_refuses_random_crop(tmp_path: Path) -> None:
    _img(tmp_path / "d" / "a.png", 32, 32)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d"), "random_crop": True}], resolution=32)
    with pytest.raises(UserError, match="random_crop"):
        ds.cache_latents(_encode)


# ------------------------------------------------------------------------------------------ from config
def test_build_dataset_from_canonical_config_kohya_folders(kohya: Path) -> None:
    from lora_compat.config.model import CanonicalConfig
    from lora_compat.plan import RunOverrides, make_plan

    cfg = CanonicalConfig(dialect="native", source=str(kohya / "cfg.toml"))
    cfg.set("train_data_dir", str(kohya / "train"))
    cfg.set("reg_data_dir", str(kohya / "reg"))
    cfg.set("resolution", "64")
    cfg.set("train_batch_size", 3)
    cfg.set("prior_loss_weight", 0.25)
    cfg.set("seed", 1)
    cfg.set("max_data_loader_n_workers", 0)
    assert build_dataset(make_plan(cfg).dataset).loader_workers == 0
    del cfg.options["max_data_loader_n_workers"]          # sd-scripts default 8, capped by the CPU count
    assert build_dataset(make_plan(cfg).dataset).loader_workers == min(8, os.cpu_count() or 1)
    plan = make_plan(cfg)
    assert plan.seed == 1
    ds = build_dataset(plan.dataset, plan.seed, max_train_steps=10, loader_workers=None)
    assert ds.seed == 1
    assert ds.num_train_images == 6 and len(ds) == 4 == plan.steps.steps_per_epoch
    batches = _all_batches(ds)
    assert sorted(torch.cat([b["loss_weights"] for b in batches]).tolist()) == [0.25] * 6 + [1.0] * 6
    assert {c for b in batches for c in b["captions"]} == {"sks dog, red collar", "sks dog", "dog"}
    # train --train-data: another kohya folder replaces the config's data
    other = build_dataset(make_plan(cfg, overrides=RunOverrides(train_data=str(kohya / "reg"))).dataset, 5,
                          loader_workers=None)
    assert other.seed == 5 and other.num_train_images == 1
    assert cfg.get("train_data_dir") == str(kohya / "train")       # the caller's config is untouched
    missing = make_plan(cfg, overrides=RunOverrides(train_data=str(kohya / "missing")))
    assert [u.option for u in missing.refusals] == ["train_data_dir"]


def test_bucket_shuffles_replay_sd_scripts_seeding(tmp_path: Path) -> None:
    """make_buckets shuffles with random.seed(seed + 0); each new epoch e re-seeds with seed + e and shuffles
    the batch list, then every bucket, in place (BaseDataset.shuffle_buckets)."""
    import random

    for i in range(5):
        _img(tmp_path / "d" / f"{i}.png", 32, 32, i)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d"), "num_repeats": 2}], resolution=32,
                                   batch_size=3, seed=42, loader_workers=0)
    inner = ds.datasets[0]
    indices, buckets = list(inner.bucket_indices), [list(b) for b in inner.buckets]
    random.seed(42)
    random.shuffle(indices)
    for b in buckets:
        random.shuffle(b)
    view = ds._views[0]
    assert view.orders[0] == (indices, buckets)
    ds.set_epoch(1)
    ds[0]                      # built with the epoch-0 order; the collate step then moves to epoch 1
    random.seed(43)
    random.shuffle(indices)
    for b in buckets:
        random.shuffle(b)
    assert view.epoch == 1 and view.orders[0] == (indices, buckets)
    assert view.rng.random() == random.random()   # the stream continues exactly like sd-scripts' global one


def test_face_crop_centers_on_face_without_bucketing(tmp_path: Path) -> None:
    # 128x128 image, face at (96, 32) size 32x32; target 64x64; range (1.0, 1.0): scale = max(0.5, 64/32)->1
    arr = np.zeros((128, 128, 3), dtype=np.uint8)
    arr[:, :, 0] = np.arange(128, dtype=np.uint8)[None, :]
    arr[:, :, 1] = np.arange(128, dtype=np.uint8)[:, None]
    (tmp_path / "d").mkdir()
    Image.fromarray(arr).save(tmp_path / "d" / "p_96_32_32_32.png")
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d"), "face_crop_aug_range": [1.0, 1.0]}],
                                   resolution=64, loader_workers=None)
    px = _pixels(_all_batches(ds)[0]["images"][0])
    # crop origin: x = 96 - 32 = 64, y = max(0, 32 - 32) = 0
    assert px[0, 0, 0] == 64 and px[0, 0, 1] == 0 and px[-1, -1, 0] == 127 and px[-1, -1, 1] == 63


def test_validation_split_keeps_the_seeded_training_part(tmp_path: Path) -> None:
    import math
    import random

    for i in range(7):
        _img(tmp_path / "d" / f"{i}.png", 32, 32, i)
    _img(tmp_path / "r" / "r.png", 32, 32)
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d")},
                                    {"image_dir": str(tmp_path / "r"), "is_reg": True}],
                                   resolution=32, dataset_params={"validation_split": 0.3, "validation_seed": 9})
    paths = sorted(str(tmp_path / "d" / f"{i}.png") for i in range(7))
    random.Random(9).shuffle(paths)
    kept = {os.path.abspath(p) for p in paths[:math.ceil(7 * 0.7)]}
    train_keys = {k for k, e in ds.datasets[0].images.items() if not e.subset.is_reg}
    assert train_keys == kept and ds.num_train_images == 5
    assert ds.num_reg_images == 1              # regularization subsets are never split


def test_resolution_forms_and_zero_prior_weight(tmp_path: Path) -> None:
    _img(tmp_path / "t" / "a.png", 48, 32)
    _img(tmp_path / "r" / "b.png", 48, 32)
    subs = [{"image_dir": str(tmp_path / "t")}, {"image_dir": str(tmp_path / "r"), "is_reg": True}]
    ds = TrainDataset.from_subsets(subs, resolution="48,32", prior_loss_weight=0.0, loader_workers=None)
    assert (ds.datasets[0].width, ds.datasets[0].height) == (48, 32)
    assert sorted(torch.cat([b["loss_weights"] for b in _all_batches(ds)]).tolist()) == [0.0, 1.0]
    with pytest.raises(UserError, match="resolution"):
        TrainDataset.from_subsets(subs, resolution="big")


def test_raw_captions_for_cached_text_encoder_outputs(kohya: Path) -> None:
    subs = _subsets(kohya, caption_prefix="photo of")
    ds = TrainDataset.from_subsets(subs, resolution=64, loader_workers=None)
    assert ds.text_encoder_output_cacheable
    ds.raw_captions = True
    assert {c for b in _all_batches(ds) for c in b["captions"]} == {"sks dog, red collar", "sks dog", "dog"}
    shuffled = TrainDataset.from_subsets(_subsets(kohya, shuffle_caption=True), resolution=64)
    assert not shuffled.text_encoder_output_cacheable


def test_token_warmup_sees_the_lagging_step_in_the_main_process(tmp_path: Path) -> None:
    _img(tmp_path / "d" / "a.png", 32, 32)
    (tmp_path / "d" / "a.txt").write_text("a, b, c, d, e", "utf-8")
    ds = TrainDataset.from_subsets([{"image_dir": str(tmp_path / "d"), "caption_extension": ".txt",
                                     "token_warmup_step": 10, "token_warmup_min": 1}],
                                   resolution=32, loader_workers=0, max_train_steps=10)
    ds.set_epoch(1)
    ds.set_current_step(8)
    assert ds[0]["captions"] == ["a"]                 # built before the collate step learned step 8
    assert ds[0]["captions"] == ["a, b, c, d"]        # floor(8 * 4 / 10) + 1 = 4 tags
