"""kohya image folders (sd-scripts §3.4) and resolution of command-line datasets."""

from __future__ import annotations

import pytest

from lora_compat.config.dataset import resolve_subsets
from lora_compat.config.kohya_folder import parse_folder_name, scan_folder
from lora_compat.config.load import load_config

from shared_data import FIXTURES

FOLDERS = FIXTURES / "spine" / "folders"


@pytest.mark.parametrize("name, expected", [
    ("10_sks dog", (10, "sks dog")), ("3_my_cat", (3, "my_cat")), ("5_", (5, "")), ("1_a_b_c", (1, "a_b_c")),
    ("0_zero", None), ("-2_neg", None), ("abc_x", None), ("notes", None), ("10", (10, "")),
])
def test_parse_folder_name(name: str, expected) -> None:
    assert parse_folder_name(name) == expected


def test_scan_counts_images_not_captions_and_skips_unprefixed() -> None:
    scan = scan_folder(str(FOLDERS / "img"))
    assert scan.exists
    assert [(s.folder, s.num_repeats, s.class_tokens, s.image_count) for s in scan.subsets] == [
        ("10_sks dog", 10, "sks dog", 2), ("3_my_cat", 3, "my_cat", 1)]
    assert [name for name, _ in scan.skipped] == ["notes"]
    assert not scan_folder(str(FOLDERS / "nope")).exists


def test_command_line_dataset_resolves_with_cli_fallbacks() -> None:
    cfg = load_config(str(FIXTURES / "spine" / "cmdline" / "command.txt"))
    (ds,) = resolve_subsets(cfg)
    assert ds.is_dreambooth
    assert ds.params["resolution"] == [512, 512]        # "--resolution=512" -> (512, 512)
    assert ds.params["batch_size"] == 1                 # train_batch_size default
    by_tokens = {s["class_tokens"]: s for s in ds.subsets}
    assert by_tokens["sks dog"]["num_repeats"] == 10
    assert by_tokens["sks dog"]["caption_extension"] == ".txt"   # command line fallback
    assert by_tokens["dog"]["is_reg"] is True
    assert by_tokens["my_cat"]["shuffle_caption"] is False      # argparse default


def test_folder_provenance_is_derived_from_train_data_dir() -> None:
    cfg = load_config(str(FIXTURES / "spine" / "cmdline" / "command.txt"))
    sub = cfg.datasets[0].subsets[0]
    prov = sub.params["num_repeats"].prov
    assert prov.kind == "derived" and "10_sks dog" in prov.conversion
    assert prov.origin.key == "--train_data_dir"
