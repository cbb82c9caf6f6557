"""What ``migrate --to sd-scripts`` writes is accepted by sd-scripts' own rules.

sd-scripts-reference.md §2 (``--config_file``: parsed by the ``toml`` 0.10.2 package, flattened one level, values
used without argparse conversion, dataset keys re-checked by voluptuous) and §3 (``--dataset_config``: strict
voluptuous schema, keys only at their allowed levels). The checks are written from those rules, not from our
writer; the ``toml`` package itself (sd-scripts' parser) reads every output when it is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lora_compat.config import options
from lora_compat.config.dataset import check_dataset_config
from lora_compat.migrate.run import render
from lora_compat.tomlparse import tomllib

from shared_data import FIXTURES, corpus_files, requires_corpus

# §2.3: types that must match exactly (the value is used as is)
STRING_OPTIONS = ("resolution", "face_crop_aug_range")
STRING_ARRAYS = ("network_args", "optimizer_args", "lr_scheduler_args", "base_weights")
# §3.2: dataset keys voluptuous also checks in the argparse namespace, float (strict) ones
STRICT_FLOAT = ("validation_split", "network_multiplier")


def _sd_scripts_parse(text: str) -> dict[str, Any]:
    """Parse like sd-scripts: with ``toml`` 0.10.2 when available (it rejects mixed int/float arrays)."""
    try:
        import toml
    except ImportError:
        return tomllib.loads(text)
    return toml.loads(text)


def _homogeneous(value: Any) -> bool:
    if not isinstance(value, list):
        return True
    kinds = {type(v) for v in value}
    return len(kinds) <= 1 and all(_homogeneous(v) for v in value)


def config_file_problems(config: dict[str, Any]) -> list[str]:
    """Every way a flat ``--config_file`` mapping breaks sd-scripts' rules (§2.1, §2.3)."""
    problems = []
    for key, value in config.items():
        spec = options.spec(key)
        if spec is None or spec.get("x-pseudo"):
            problems.append(f"{key}: not an sd-scripts option (silently ignored, §2.1)")
        if isinstance(value, dict):
            problems.append(f"{key}: a table is flattened away (§2.1 step 5)")
        if not _homogeneous(value):
            problems.append(f"{key}: mixed-type array (toml 0.10.2 refuses it)")
        if key in STRING_OPTIONS and not isinstance(value, str):
            problems.append(f"{key}: must be a string, got {value!r}")
        if key in STRING_ARRAYS and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"{key}: must be an array of strings")
        if key in ("lr_warmup_steps", "lr_decay_steps") and (isinstance(value, bool)
                                                            or not isinstance(value, (int, float))):
            problems.append(f"{key}: must be an int (steps) or a float (ratio)")
        if key in STRICT_FLOAT and not isinstance(value, float):
            problems.append(f"{key}: voluptuous wants a float, got {value!r}")
        if key in ("config_file", "output_config", "wandb_api_key", "huggingface_token"):
            problems.append(f"{key}: must never be written")
    return problems


def _check_outputs(files: dict[str, str], *, masked_loss: bool = False, dataset_errors_ok: bool = False) -> None:
    for path, text in files.items():
        if path.endswith("_prompts.txt"):
            continue  # the sample prompt file (plain text)
        data = _sd_scripts_parse(text)
        if path.endswith("_dataset.toml"):
            assert set(data) <= {"general", "datasets"}, path
            if not dataset_errors_ok:
                assert check_dataset_config(data, masked_loss=masked_loss) == [], path
        else:
            assert config_file_problems(data) == [], path


def _tricky_config():
    """Values a legacy reader can hand over (JSON ints, lists) that sd-scripts would refuse as written."""
    from lora_compat.config.model import CanonicalConfig, Dataset, Setting, Subset

    cfg = CanonicalConfig(dialect="test", source="tricky")
    for k, v in {"network_dim": 8, "network_alpha": 4, "learning_rate": 1, "text_encoder_lr": [0.0001, 1],
                 "lr_warmup_steps": 10, "resolution": [768, 512], "face_crop_aug_range": [2, 4],
                 "validation_split": 0, "network_args": "conv_dim=4 conv_alpha=1"}.items():
        cfg.set(k, v)
    cfg.general = {"resolution": Setting("512"), "face_crop_aug_range": Setting([2, 4])}
    cfg.datasets = [Dataset({"validation_split": Setting(0), "network_multiplier": Setting(1)},
                            [Subset({"image_dir": Setting("/img"), "num_repeats": Setting(2)})])]
    return cfg


def test_tricky_values_become_what_sd_scripts_accepts(tmp_path: Path) -> None:
    out = str(tmp_path / "cfg.toml")
    files, report = render(_tricky_config(), "sd-scripts", out)
    _check_outputs(files)
    config = _sd_scripts_parse(files[out])
    assert config["resolution"] == "768,512" and config["face_crop_aug_range"] == "2.0,4.0"
    assert config["validation_split"] == 0.0 and config["lr_warmup_steps"] == 10
    assert config["text_encoder_lr"] == [0.0001, 1.0]  # only the first value is used; same numbers
    assert config["network_alpha"] == 4 and isinstance(config["network_alpha"], int)  # int64 alpha kept
    assert config["network_args"] == ["conv_dim=4", "conv_alpha=1"]
    dataset = tomllib.loads(files[str(tmp_path / "cfg_dataset.toml")])
    assert dataset["general"] == {"resolution": 512, "face_crop_aug_range": [2.0, 4.0]}
    assert dataset["datasets"][0]["validation_split"] == 0.0
    assert dataset["datasets"][0]["network_multiplier"] == 1.0
    converted = {e.option for e in report.entries if e.kind == "converted"}
    assert {"resolution", "face_crop_aug_range", "validation_split", "text_encoder_lr", "network_args",
            "datasets[0].validation_split"} <= converted


def test_native_fixture_output_follows_the_rules(tmp_path: Path) -> None:
    files, _ = render(_load(FIXTURES / "migrate" / "native_full.toml"), "sd-scripts", str(tmp_path / "o.toml"))
    assert len(files) == 2
    _check_outputs(files)


def test_rule_checker_catches_what_sd_scripts_rejects() -> None:
    """The checker above is not vacuous: each rule fires on the value sd-scripts refuses."""
    bad = {"resolution": 512, "network_args": "conv_dim=4", "lr_warmup_steps": "10%", "validation_split": 0,
           "not_an_option": 1, "wandb_api_key": "x", "base_weights_multiplier": [1, 0.5], "sample": {"a": 1}}
    found = " | ".join(config_file_problems(bad))
    for key in bad:
        assert key in found, key


def _load(path: Path):
    from lora_compat.config.load import load_config

    return load_config(str(path))


@requires_corpus
def test_every_corpus_migration_follows_sd_scripts_rules(tmp_path: Path) -> None:
    from lora_compat.errors import UserError

    checked = 0
    for path in corpus_files():
        try:
            cfg = _load(path)
        except UserError:
            continue
        if cfg.invalid:
            continue
        files, _ = render(cfg, "sd-scripts", str(tmp_path / "out.toml"))
        # the kohya_ss GUI target passes its dataset TOML to sd-scripts too
        gui_files, _ = render(cfg, "kohya-gui", str(tmp_path / "gui.json"))
        files.update({k: v for k, v in gui_files.items() if k.endswith("_dataset.toml")})
        # a dataset error the legacy file already had (checked by the round-trip test) is not ours to fix
        _check_outputs(files, masked_loss=bool(cfg.get("masked_loss")), dataset_errors_ok=True)
        checked += 1
    assert checked >= 100


@pytest.mark.parametrize("value,expected", [([1, 0.5], [1.0, 0.5]), ([1, 2], [1, 2]), (["a", "b"], ["a", "b"])])
def test_numeric_arrays_are_made_homogeneous(tmp_path: Path, value: list, expected: list) -> None:
    from lora_compat.config.model import CanonicalConfig

    cfg = CanonicalConfig(dialect="test", source="t")
    cfg.set("base_weights_multiplier", value)
    files, report = render(cfg, "sd-scripts", str(tmp_path / "o.toml"))
    assert _sd_scripts_parse(files[str(tmp_path / "o.toml")])["base_weights_multiplier"] == expected
    entry = next(e for e in report.entries if e.option == "base_weights_multiplier")
    assert (entry.kind == "converted") == (len({type(v) for v in value}) > 1)
