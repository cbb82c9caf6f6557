"""What `plan` resolves for `train` beyond steps and adapters: optimizer (and its package), ignored options,
refusals, the dataset-level batch size, metadata values typed as sd-scripts writes them. No torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lora_compat.cli import cli
from lora_compat.config.model import CanonicalConfig
from lora_compat.plan import make_plan


def _cfg(**options) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="native", source="test.toml")
    for k, v in options.items():
        cfg.set(k, v)
    return cfg


def _refused(plan) -> dict[str, str]:
    return {u.option: u.why for u in plan.refusals}


def test_unknown_network_module_is_refused_by_name_and_never_imported():
    import sys

    plan = make_plan(_cfg(network_module="networks_not_a_module_xyz"))
    assert "networks_not_a_module_xyz" in _refused(plan)["network_module"]
    assert "networks_not_a_module_xyz" not in sys.modules
    assert "network_module" in _refused(make_plan(_cfg(network_module="os")))
    assert not make_plan(_cfg(network_module="networks.lora")).refusals


def test_optimizer_is_shown_with_its_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name,
                        *a: None if name == "bitsandbytes" else real(name, *a))
    plan = make_plan(_cfg(optimizer_type="AdamW8bit", optimizer_args=["weight_decay=0.1"]))
    o = plan.optimizer
    assert (o.name, o.class_path, o.package, o.package_installed) == \
        ("AdamW8bit", "bitsandbytes.optim.adamw.AdamW8bit", "bitsandbytes", False)
    assert o.ss_optimizer == "bitsandbytes.optim.adamw.AdamW8bit(weight_decay=0.1)"
    assert "pip install bitsandbytes" in _refused(plan)["optimizer_type"]
    # the legacy flag picks the optimizer too (and is named as the source)
    legacy = make_plan(_cfg(use_8bit_adam=True))
    assert legacy.optimizer.name == "AdamW8bit" and legacy.optimizer.source == "use_8bit_adam"
    adamw = make_plan(_cfg()).optimizer
    assert adamw.package is None and adamw.package_installed is None and adamw.ss_optimizer == "torch.optim.adamw.AdamW"


def test_plan_text_says_when_the_optimizer_package_is_missing(tmp_path: Path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "prodigyopt" else real(name, *a))
    conf = tmp_path / "c.toml"
    conf.write_text('optimizer_type = "Prodigy"\nlearning_rate = 1.0\n')
    res = CliRunner().invoke(cli, ["plan", str(conf)])
    assert res.exit_code == 0, res.output
    assert "Prodigy = prodigyopt.prodigy.Prodigy" in res.output
    assert "NOT installed - pip install prodigyopt" in res.output
    assert "[train refuses this]" in res.output


def test_options_the_engine_does_not_run_are_listed_with_why():
    plan = make_plan(_cfg(max_data_loader_n_workers=0, tokenizer_cache_dir="/tok", lowram=True,
                          huggingface_repo_id="me/x", xformers=True))
    ignored = {u.option: u.why for u in plan.ignored}
    assert set(ignored) == {"max_data_loader_n_workers", "tokenizer_cache_dir", "lowram", "huggingface_repo_id"}
    assert "same training" in ignored["lowram"]
    assert "no DataLoader worker processes" in ignored["max_data_loader_n_workers"]
    assert "single-file model's tokenizer" in ignored["tokenizer_cache_dir"]
    assert plan.dataset.loader_workers == 0 and plan.model.attention == "sdpa"   # what the engine does run
    assert not make_plan(_cfg(max_data_loader_n_workers=None)).ignored


def test_every_option_is_run_or_listed_as_ignored(tmp_path: Path):
    """Every sd-scripts option is either read by make_plan (recorded through the config's getters) or listed in
    ENGINE_IGNORED with why: nothing is silently dropped."""
    from lora_compat.config import options
    from lora_compat.plan import ENGINE_IGNORED

    read: set[str] = set()
    (tmp_path / "t" / "2_dog").mkdir(parents=True)
    (tmp_path / "r" / "1_dog").mkdir(parents=True)

    class Recording(CanonicalConfig):
        def get(self, name, default=None):
            read.add(name)
            return super().get(name, default)

        def effective(self, name):
            read.add(name)
            return super().effective(name)

        def is_set(self, name):
            read.add(name)
            return super().is_set(name)

    for extra in ({}, {"network_args": ["conv_dim=4"], "lr_scheduler": "cosine", "resume": "x", "dataset_class": "x"},
                  {"optimizer_type": "Adafactor", "cache_text_encoder_outputs": True, "sdxl": True,
                   "save_n_epoch_ratio": 2, "network_weights": "w.safetensors", "dim_from_weights": True,
                   "caption_extention": ".txt", "train_data_dir": str(tmp_path / "t"),
                   "reg_data_dir": str(tmp_path / "r")},
                  {"in_json": "m.json", "train_data_dir": str(tmp_path / "t")}):
        cfg = Recording(dialect="native", source="t")
        for k, v in extra.items():
            cfg.set(k, v)
        make_plan(cfg)
    schema = set(options.option_names())
    # options that only pick the family (read by the spine's family decision) or the config file itself
    spine = {"v2", "sdxl", "dataset_config"}
    missing = sorted(schema - read - set(ENGINE_IGNORED) - spine)
    assert not missing, missing
    assert not set(ENGINE_IGNORED) - schema   # no stale names


def test_effective_batch_uses_the_dataset_batch_size(tmp_path: Path):
    img = tmp_path / "img"
    img.mkdir()
    ds = tmp_path / "ds.toml"
    ds.write_text(f"[[datasets]]\nresolution = 64\nbatch_size = 4\n[[datasets.subsets]]\nimage_dir = '{img}'\n")
    conf = tmp_path / "c.toml"
    conf.write_text(f"dataset_config = '{ds}'\ntrain_batch_size = 1\ngradient_accumulation_steps = 2\n")
    res = CliRunner().invoke(cli, ["plan", str(conf), "--format", "json"])
    assert res.exit_code == 0, res.output
    steps = json.loads(res.output)["steps"]
    assert steps["dataset_batch_sizes"] == [4] and steps["train_batch_size"] == 4
    assert steps["effective_batch_size"] == 8
    assert any("batch_size 4 replaces train_batch_size 1" in line for line in steps["explanation"])


def test_metadata_values_typed_as_sd_scripts_writes_them():
    md = make_plan(_cfg(resolution="512", learning_rate=1e-4, optimizer_type="AdamW")).outputs.metadata
    assert md["ss_resolution"] == "(512, 512)" and md["ss_min_bucket_reso"] == "None"
    assert md["ss_max_bucket_reso"] == "None" and md["ss_text_encoder_lr"] == "None" and md["ss_unet_lr"] == "None"
    assert md["ss_optimizer"] == "torch.optim.adamw.AdamW" and md["ss_learning_rate"] == "0.0001"
    assert md["ss_session_id"] is None and md["ss_seed"] is None   # drawn by the run
    md = make_plan(_cfg(text_encoder_lr=[5e-5, 1e-5], seed=3)).outputs.metadata
    assert md["ss_text_encoder_lr"] == "5e-05" and md["ss_seed"] == "3"
    # Adafactor's relative_step: sd-scripts keeps no learning rate and records its own schedule name
    md = make_plan(_cfg(optimizer_type="Adafactor", learning_rate=1e-3, unet_lr=1e-3)).outputs.metadata
    assert md["ss_learning_rate"] == "None" and md["ss_unet_lr"] == "None"
    assert md["ss_lr_scheduler"] == "adafactor:0.001"
    assert md["ss_optimizer"] == "transformers.optimization.Adafactor(relative_step=True)"


@pytest.mark.parametrize("options, option", [
    ({"lr_scheduler_type": "torch.optim.lr_scheduler.StepLR"}, "lr_scheduler_type"),
    ({"dataset_class": "my.Dataset"}, "dataset_class"),
    ({"resume": "out/x-state"}, "resume"),
    ({"optimizer_args": ["relative_step=true"], "optimizer_type": "Adafactor"}, "optimizer_args"),
    ({"lr_scheduler": "constant", "lr_warmup_steps": 10}, "lr_warmup_steps"),
    ({"max_token_length": 100}, "max_token_length"),
    ({"full_bf16": True}, "full_bf16"),
    ({"save_model_as": "bin"}, "save_model_as"),
    ({"network_train_unet_only": True, "network_train_text_encoder_only": True}, "network_train_unet_only"),
])
def test_what_train_would_stop_on_is_refused_in_the_plan(options, option):
    assert option in _refused(make_plan(_cfg(**options)))


def test_metadata_strings_agree_with_the_family_registry():
    """What the plan writes (ss_base_model_version, modelspec.architecture) is what the family registry reads."""
    from lora_compat.arch.families import FAMILIES
    from lora_compat.plan.metadata import FAMILY_SPECS

    for fid, spec in FAMILY_SPECS.items():
        fam = FAMILIES[fid]
        assert {spec.version, spec.version_v} <= set(fam.base_model_versions), fid
        for arch in (spec.architecture, spec.architecture_v):
            assert any(arch.startswith(p) for p in fam.modelspec_architectures), (fid, arch)


def test_one_model_part_table():
    """unet / te1 / te2 <-> diffusers component <-> kohya prefix, from arch; the plan and weights use it."""
    from lora_compat.arch import component_part, model_parts
    from lora_compat.weights.layouts import COMPONENT_PREFIXES, PART_COMPONENT

    assert [(p.part, p.component, p.kohya_prefix) for p in model_parts("sd1")] == \
        [("unet", "unet", "lora_unet"), ("te1", "text_encoder", "lora_te")]
    assert [(p.part, p.component, p.kohya_prefix) for p in model_parts("sdxl")] == \
        [("unet", "unet", "lora_unet"), ("te1", "text_encoder", "lora_te1"), ("te2", "text_encoder_2", "lora_te2")]
    assert component_part("text_encoder_2") == "te2" and PART_COMPONENT["te1"] == "text_encoder"
    assert COMPONENT_PREFIXES["text_encoder_2."] == "te2"
    plan = make_plan(_cfg(sdxl=True))
    assert [(a.part, a.kohya_prefix) for a in plan.adapters] == \
        [("unet", "lora_unet"), ("text_encoder", "lora_te1"), ("text_encoder_2", "lora_te2")]
