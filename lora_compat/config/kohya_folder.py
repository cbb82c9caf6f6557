"""The kohya image-folder convention: ``train_data_dir/<repeats>_<class tokens>/`` -> dataset subsets.

Reproduces sd-scripts' ``generate_dreambooth_subsets_config_by_subdirs`` (reference
sd-scripts-reference.md §3.4): every immediate sub-folder whose name starts with an int ``N`` followed by
``_`` becomes a DreamBooth subset with ``num_repeats=N`` and ``class_tokens`` = the rest of the name
(``10_sks dog`` -> "sks dog", ``3_my_cat`` -> "my_cat", ``5_`` -> ""); folders whose prefix is not an int
or is < 1 are skipped; images directly in ``train_data_dir`` are ignored; ``reg_data_dir`` sub-folders
become ``is_reg`` subsets. With ``--in_json`` the one fine-tune subset is ``{image_dir: train_data_dir,
metadata_file: in_json}``. A folder that does not exist on this machine yields no subsets and a Note —
never an error: configs are routinely read away from the machine that trained them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from lora_compat.config.model import (
    DERIVED,
    CanonicalConfig,
    Dataset,
    Note,
    Origin,
    Provenance,
    Setting,
    Subset,
)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: sd-scripts' IMAGE_EXTENSIONS: each extension in lower and in upper case (``glob`` is case-sensitive on the
#: systems sd-scripts runs on, so ``.Png`` is not listed).
IMAGE_EXTENSIONS = frozenset(IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS))


@dataclass
class FolderSubset:
    """One ``N_name`` sub-folder."""

    folder: str           # the sub-folder name as on disk
    path: str             # full path
    num_repeats: int
    class_tokens: str
    is_reg: bool
    image_count: int


@dataclass
class FolderScan:
    """What a kohya image folder holds."""

    root: str
    exists: bool
    subsets: list[FolderSubset] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (folder, why)


def parse_folder_name(name: str) -> tuple[int, str] | None:
    """``"10_sks dog"`` -> (10, "sks dog"); None when sd-scripts would skip the folder."""
    tokens = name.split("_")
    try:
        repeats = int(tokens[0])
    except ValueError:
        return None
    if repeats < 1:
        return None
    return repeats, "_".join(tokens[1:])


def image_files(folder: str) -> list[str]:
    """sd-scripts' ``glob_images``: the image files of ``folder`` (not recursive, extensions of
    :data:`IMAGE_EXTENSIONS`), sorted full paths. Raises OSError when the folder cannot be listed."""
    names = [e.name for e in os.scandir(folder) if e.is_file()]
    return sorted(os.path.join(folder, n) for n in names if os.path.splitext(n)[1] in IMAGE_EXTENSIONS)


def parse_image_counts(items: tuple[str, ...] | list[str]) -> dict[str, int] | None:
    """``--images FOLDER=COUNT`` values (plan, migrate) -> {folder: count}; UserError for anything else; None when
    none are given."""
    from lora_compat.errors import UserError

    counts: dict[str, int] = {}
    for item in items:
        folder, sep, n = item.rpartition("=")
        if not sep or not folder or not n.strip().isdigit():
            raise UserError(f"--images expects FOLDER=COUNT, got {item!r}")
        counts[folder] = int(n)
    return counts or None


def given_folder_total(image_counts: dict[str, int] | None) -> int | None:
    """Σ repeats x images over the ``<repeats>_<name>`` folders named in ``image_counts`` (the image folder itself
    is not here), or None when none of them is such a folder."""
    total, found = 0, False
    for key, count in (image_counts or {}).items():
        parsed = parse_folder_name(os.path.basename(os.path.normpath(key)))
        if parsed is not None:
            total += parsed[0] * int(count)
            found = True
    return total if found else None


def count_images(folder: str) -> int:
    """How many images sd-scripts would list in ``folder`` (:func:`image_files`); 0 when it cannot be listed."""
    try:
        return len(image_files(folder))
    except OSError:
        return 0


def resolve_folder(path: str, base_dir: str | None) -> str:
    """``path`` as given when it exists (sd-scripts resolves against its working directory), else relative
    to the config file's folder."""
    if os.path.isabs(path) or os.path.isdir(path) or not base_dir:
        return path
    cand = os.path.normpath(os.path.join(base_dir, path))
    return cand if os.path.isdir(cand) else path


def scan_folder(root: str, *, is_reg: bool = False, base_dir: str | None = None) -> FolderScan:
    """Scan a kohya image folder (never raises)."""
    real = resolve_folder(root, base_dir)
    if not os.path.isdir(real):
        return FolderScan(root=root, exists=False)
    scan = FolderScan(root=real, exists=True)
    try:
        entries = sorted(e.name for e in os.scandir(real) if e.is_dir())
    except OSError:
        return FolderScan(root=root, exists=False)
    for name in entries:
        parsed = parse_folder_name(name)
        if parsed is None:
            tokens = name.split("_")
            why = ("repeat count < 1" if tokens[0].lstrip("-").isdigit() else
                   "name does not start with '<repeats>_' (sd-scripts skips it with a warning)")
            scan.skipped.append((name, why))
            continue
        full = os.path.join(real, name)
        scan.subsets.append(FolderSubset(name, full, parsed[0], parsed[1], is_reg, count_images(full)))
    return scan


def folder_datasets(cfg: CanonicalConfig, *, base_dir: str | None = None, record: bool = True) -> list[Dataset]:
    """The dataset sd-scripts derives from ``train_data_dir`` / ``reg_data_dir`` / ``in_json`` of ``cfg``.

    With ``record`` (readers), Notes about missing folders and skipped sub-folders go to ``cfg.notes``.
    """
    train_dir = cfg.get("train_data_dir")
    if not isinstance(train_dir, str) or not train_dir:
        return []
    train_origin = cfg.locate("train_data_dir")
    in_json = cfg.get("in_json")
    if isinstance(in_json, str) and in_json:
        origins = tuple(o for o in (train_origin, cfg.locate("in_json")) if o)
        prov = Provenance(DERIVED, origins, "fine-tune mode (--in_json): one subset {image_dir: train_data_dir, "
                                            "metadata_file: in_json}")
        sub = Subset({"image_dir": Setting(train_dir, prov), "metadata_file": Setting(in_json, prov)},
                     origin=train_origin)
        return [Dataset(subsets=[sub], origin=train_origin)]
    subsets: list[Subset] = []
    reg_dir = cfg.get("reg_data_dir")
    for root, is_reg, origin in ((train_dir, False, train_origin),
                                 (reg_dir, True, cfg.locate("reg_data_dir"))):
        if not isinstance(root, str) or not root:
            continue
        scan = scan_folder(root, is_reg=is_reg, base_dir=base_dir)
        key = "reg_data_dir" if is_reg else "train_data_dir"
        if not scan.exists:
            if record:
                cfg.notes.append(Note(
                    "kohya-folder-missing",
                    f"{key} {root!r} does not exist here; its <repeats>_<name> sub-folders (repeats, class "
                    "tokens, image counts) cannot be read", origin, {"key": key, "path": root}))
            continue
        if record:
            for name, why in scan.skipped:
                cfg.notes.append(Note("kohya-folder-skipped", f"{key} sub-folder {name!r} is skipped by "
                                      f"sd-scripts: {why}", origin, {"key": key, "folder": name}))
            if not scan.subsets:
                cfg.notes.append(Note("kohya-folder-empty", f"{key} {root!r} has no <repeats>_<name> "
                                      "sub-folders; sd-scripts finds no images in it", origin,
                                      {"key": key, "path": root}))
        for fs in scan.subsets:
            subsets.append(folder_subset(fs, origin))
    if not subsets:
        return []
    return [Dataset(subsets=subsets, origin=train_origin)]


def folder_subset(fs: FolderSubset, origin: Origin | None) -> Subset:
    """A canonical Subset for one scanned ``N_name`` folder, with derived provenance."""
    origins = (origin,) if origin else ()
    conv = f"folder {fs.folder!r} -> num_repeats {fs.num_repeats}, class_tokens {fs.class_tokens!r}"
    prov = Provenance(DERIVED, origins, conv)
    params = {
        "image_dir": Setting(fs.path, prov),
        "num_repeats": Setting(fs.num_repeats, prov),
        "class_tokens": Setting(fs.class_tokens, prov),
    }
    if fs.is_reg:
        params["is_reg"] = Setting(True, Provenance(DERIVED, origins, "sub-folder of reg_data_dir -> is_reg"))
    return Subset(params, origin=origin)


def command_line_datasets(cfg: CanonicalConfig) -> list[Dataset]:
    """Datasets of a config without a dataset config, computed without touching ``cfg`` (for resolution)."""
    base = os.path.dirname(os.path.abspath(cfg.source)) if cfg.source else None
    return folder_datasets(cfg, base_dir=base, record=False)


def apply_kohya_folder(cfg: CanonicalConfig, *, base_dir: str | None = None) -> None:
    """Readers: when ``cfg`` has no dataset config, fill ``cfg.datasets`` from its image folders."""
    if cfg.datasets or cfg.get("dataset_config"):
        return
    if base_dir is None and cfg.source:
        base_dir = os.path.dirname(os.path.abspath(cfg.source))
    cfg.datasets = folder_datasets(cfg, base_dir=base_dir, record=True)
