"""Every lint rule: one config that triggers it and one that does not (configs built directly in code)."""

from __future__ import annotations

from typing import Any

import pytest

from lora_compat.config.model import (
    CanonicalConfig, Dataset, FrontendOnlyKey, InvalidValue, Note, Origin, Provenance, Setting, Subset, UnknownKey,
)
from lora_compat.lint.registry import all_rules, get_rule
from lora_compat.lint.runner import lint_config

SRC = "cfg.toml"


def C(dialect: str = "sd-scripts-toml", *, era: str | None = None, tab: str | None = None,
      raw: dict[str, Any] | None = None, keys: dict[str, str] | None = None,
      subsets: list[dict[str, Any]] | None = None, ds: dict[str, Any] | None = None,
      notes: tuple = (), unknown: tuple = (), frontend: tuple = (), invalid: tuple = (),
      **opts: Any) -> CanonicalConfig:
    """A canonical config: ``opts`` are options (line = position), ``raw`` raw values as written, ``keys`` the key
    as written when it differs from the option name, ``frontend``/``unknown`` (key, value) pairs."""
    raw, keys = raw or {}, keys or {}
    cfg = CanonicalConfig(dialect=dialect, source=SRC, era=era, tab=tab)
    line = 1
    for name, value in opts.items():
        o = Origin(SRC, keys.get(name, name), line, None, raw.get(name, value))
        cfg.options[name] = Setting(value, Provenance(origins=(o,)))
        line += 1
    if subsets is not None or ds is not None:
        d = Dataset(params={k: Setting(v, Provenance(origins=(Origin(SRC, f"datasets[0].{k}", 50),)))
                            for k, v in (ds or {}).items()})
        for si, params in enumerate(subsets or []):
            d.subsets.append(Subset(params={
                k: Setting(v, Provenance(origins=(Origin(SRC, f"datasets[0].subsets[{si}].{k}", 60 + si),)))
                for k, v in params.items()}))
        cfg.datasets.append(d)
    for i, (k, v) in enumerate(frontend):
        cfg.frontend_only.append(FrontendOnlyKey(k, v, Origin(SRC, k, 100 + i, None, v), "front-end only"))
    for i, (k, v) in enumerate(unknown):
        cfg.unknown_keys.append(UnknownKey(k, v, Origin(SRC, k, 200 + i, None, v)))
    cfg.invalid.extend(invalid)
    cfg.notes.extend(notes)
    return cfg


K = "kohya-gui"
SDXL = {"sdxl": True}
TE_CACHE = {"sdxl": True, "cache_text_encoder_outputs": True}

CASES: dict[str, tuple[CanonicalConfig, CanonicalConfig]] = {
    "LC101": (C(invalid=(InvalidValue("network_dim", "abc", Origin(SRC, "network_dim", 3), "expected an integer"),)),
              C(network_dim=8)),
    "LC102": (C(unknown=(("netwrok_dim", 32),)), C(network_dim=32)),
    "LC103": (C(network_dim="many"), C(network_dim=8)),
    "LC104": (C(max_token_length=200), C(max_token_length=225)),
    "LC105": (C(lr_warmup_steps=100.0), C(lr_warmup_steps=100)),
    "LC106": (C(resolution="1024,1024", raw={"resolution": 1024}), C(resolution="1024,1024")),
    "LC107": (C(optimizer_args=["weight_decay"]), C(optimizer_args=["weight_decay=0.01", "betas=0.9,0.99"])),
    "LC108": (C(network_args=["conv_dim 8"]), C(network_args=["conv_dim=8"])),
    "LC109": (C(mixed_precision="fp32"), C(mixed_precision="bf16")),
    "LC110": (C(lr_scheduler="cosin"), C(lr_scheduler="cosine")),
    "LC111": (C(face_crop_aug_range="3.0,2.0"), C(face_crop_aug_range="2.0,3.0")),
    "LC112": (C(save_model_as="bin"), C(save_model_as="safetensors")),
    "LC113": (C(K, network_dim=64, notes=(Note("duplicate-key", "network_dim is written again on line 3",
                                                Origin(SRC, "network_dim", 1)),)), C(K, network_dim=64)),
    "LC201": (C(network_dim=8, network_alpha=64), C(network_dim=8, network_alpha=4)),
    "LC202": (C(network_dim=64), C(network_dim=64, network_alpha=32)),
    "LC203": (C(K, lr_warmup_steps=0, keys={"lr_warmup_steps": "lr_warmup"}, raw={"lr_warmup_steps": 0.05}),
              C(K, lr_warmup_steps=0.05, keys={"lr_warmup_steps": "lr_warmup"}, raw={"lr_warmup_steps": 5})),
    "LC204": (C(max_train_steps=400, lr_warmup_steps=500), C(max_train_steps=400, lr_warmup_steps=40)),
    "LC205": (C(keep_tokens=1), C(keep_tokens=1, shuffle_caption=True)),
    "LC206": (C(keep_tokens_separator="|||"), C(keep_tokens_separator="|||", shuffle_caption=True)),
    "LC207": (C(keep_tokens=2, keep_tokens_separator="|||", shuffle_caption=True),
              C(keep_tokens_separator="|||", shuffle_caption=True)),
    "LC208": (C(subsets=[{"caption_dropout_every_n_epochs": 2}]), C(subsets=[{"caption_dropout_rate": 0.05}])),
    "LC209": (C(cache_latents=True, subsets=[{"color_aug": True}]), C(cache_latents=True, subsets=[{"flip_aug": True}])),
    "LC210": (C(**TE_CACHE, network_train_unet_only=True, shuffle_caption=True),
              C(**TE_CACHE, network_train_unet_only=True)),
    "LC211": (C(**TE_CACHE), C(**TE_CACHE, network_train_unet_only=True)),
    "LC212": (C(**TE_CACHE, network_train_unet_only=True, caption_prefix="mychar"),
              C(**TE_CACHE, network_train_unet_only=True)),
    "LC213": (C(enable_bucket=True, bucket_reso_steps=32), C(sdxl=True, enable_bucket=True, bucket_reso_steps=32)),
    "LC214": (C(resolution="1024,1024", enable_bucket=True, max_bucket_reso=768),
              C(resolution="1024,1024", enable_bucket=True, max_bucket_reso=2048)),
    "LC215": (C(network_train_unet_only=True, text_encoder_lr=5e-5), C(network_train_unet_only=True)),
    "LC216": (C(lr_scheduler="cosine", lr_scheduler_num_cycles=3),
              C(lr_scheduler="cosine_with_restarts", lr_scheduler_num_cycles=3)),
    "LC217": (C(lr_scheduler="cosine", lr_scheduler_power=2.0), C(lr_scheduler="polynomial", lr_scheduler_power=2.0)),
    "LC218": (C(lr_scheduler="constant", lr_warmup_steps=100),
              C(lr_scheduler="constant_with_warmup", lr_warmup_steps=100)),
    "LC219": (C(lr_scheduler="constant_with_warmup"), C(lr_scheduler="constant_with_warmup", lr_warmup_steps=10)),
    "LC220": (C(optimizer_type="AdamW", optimizer_args=["decouple=True"]),
              C(optimizer_type="Prodigy", optimizer_args=["decouple=True"])),
    "LC221": (C(network_dropout=0.1), C(network_dim=8)),
    "LC222": (C(max_train_steps=2000, max_train_epochs=10), C(max_train_epochs=10)),
    "LC223": (C(prior_loss_weight=0.5), C(prior_loss_weight=0.5, reg_data_dir="reg")),
    "LC224": (C(adaptive_noise_scale=0.01), C(adaptive_noise_scale=0.01, noise_offset=0.05)),
    "LC225": (C(scale_v_pred_loss_like_noise_pred=True),
              C(scale_v_pred_loss_like_noise_pred=True, v_parameterization=True, v2=True)),
    "LC226": (C(full_bf16=True, mixed_precision="fp16"), C(full_bf16=True, mixed_precision="bf16")),
    "LC227": (C(fp8_base=True, mixed_precision="no"), C(fp8_base=True, mixed_precision="bf16")),
    "LC228": (C(log_with="tensorboard"), C(log_with="tensorboard", logging_dir="logs")),
    "LC229": (C(network_train_unet_only=True, network_train_text_encoder_only=True), C(network_train_unet_only=True)),
    "LC230": (C(fused_backward_pass=True, optimizer_type="AdamW8bit"), C(optimizer_type="AdamW8bit")),
    "LC231": (C(use_8bit_adam=True, optimizer_type="AdamW"), C(use_8bit_adam=True)),
    "LC232": (C(optimizer_type="Adafactor"),
              C(optimizer_type="Adafactor", optimizer_args=["relative_step=False", "scale_parameter=False"])),
    "LC233": (C(text_encoder_lr=0.0), C(text_encoder_lr=1e-5)),
    "LC234": (C(K, caption_extension=".caption", raw={"caption_extension": ""}), C(K, caption_extension=".txt")),
    "LC235": (C(enable_bucket=True, face_crop_aug_range="2.0,4.0"), C(face_crop_aug_range="2.0,4.0")),
    "LC236": (C(ds={"network_multiplier": 0.5}, subsets=[{"image_dir": "a"}]), C(subsets=[{"image_dir": "a"}])),
    "LC237": (C(dim_from_weights=True, network_dim=64), C(dim_from_weights=True)),
    "LC238": (C(lr_scheduler="cosine_with_min_lr"), C(lr_scheduler="cosine_with_min_lr", lr_scheduler_min_lr_ratio=0.1)),
    "LC239": (C(lr_scheduler="polynomial", learning_rate=1e-8), C(lr_scheduler="polynomial", learning_rate=1e-4)),
    "LC240": (C(network_module="networks.dylora", network_dim=16, network_args=["conv_dim=8", "unit=4"]),
              C(network_module="networks.dylora", network_dim=16, network_args=["conv_dim=16", "unit=4"])),
    "LC241": (C(min_timestep=500, max_timestep=500), C(min_timestep=100, max_timestep=1000)),
    "LC242": (C(max_train_steps=1000, initial_step=1000), C(max_train_steps=1000, initial_step=500)),
    "LC243": (C(optimizer_type="Prodigy", learning_rate=1e-4), C(optimizer_type="Prodigy", learning_rate=1.0)),
    "LC244": (C(validation_split=10.0), C(validation_split=0.1)),
    "LC245": (C(optimizer_type="SGDNesterov8bit"), C(optimizer_type="SGDNesterov")),
    "LC246": (C(save_every_n_steps=100, save_last_n_steps=3), C(save_every_n_steps=100, save_last_n_steps=300)),
    "LC247": (C(persistent_data_loader_workers=True, max_data_loader_n_workers=0),
              C(persistent_data_loader_workers=True, max_data_loader_n_workers=2)),
    "LC248": (C(optimizer_type="AdamW8bit", lr_scheduler="adafactor"),
              C(optimizer_type="Adafactor", lr_scheduler="adafactor")),
    "LC301": (C(network_dim=32, network_alpha=0.0001), C(network_dim=32, network_alpha=16)),
    "LC302": (C(keep_tokens=1000, shuffle_caption=True), C(keep_tokens=1, shuffle_caption=True)),
    "LC303": (C(clip_skip=1, raw={"clip_skip": True}), C(clip_skip=2)),
    "LC304": (C(xformers=True, raw={"xformers": ["random_crop", "flip"]}), C(xformers=True)),
    "LC305": (C(enable_bucket=True, keys={"enable_bucket": "buckets"}, raw={"enable_bucket": [5, 10, 15]}),
              C(enable_bucket=True, keys={"enable_bucket": "buckets"})),
    "LC306": (C(vae="True", raw={"vae": True}), C(vae="/models/vae.safetensors")),
    "LC307": (C(v_parameterization=True, raw={"v_parameterization": "batch_norm"}), C(v_parameterization=False)),
    "LC308": (C(save_precision="fp16", raw={"save_precision": 16}), C(save_precision="fp16")),
    "LC309": (C(mixed_precision="fp16", raw={"mixed_precision": True}), C(mixed_precision="fp16")),
    "LC310": (C("derrian-argstore", frontend=(("tag_occurrence_txt_file", "/data/tags.txt"),)),
              C("derrian-argstore", frontend=(("tag_occurrence_txt_file", True),))),
    "LC311": (C("derrian-argstore", frontend=(("warmup_lr_ratio", 10),)),
              C("derrian-argstore", frontend=(("warmup_lr_ratio", 0.1),))),
    "LC312": (C(shuffle_caption=True), C(shuffle_caption=True, keep_tokens=1)),
    "LC313": (C(caption_tag_dropout_rate=0.5, keep_tokens=1), C(caption_tag_dropout_rate=0.1, keep_tokens=1)),
    "LC314": (C(lr_scheduler="plateau"), C(lr_scheduler="cosine")),
    "LC315": (C(network_train_text_encoder_only=True), C(network_train_unet_only=True)),
    "LC316": (C(no_metadata=True), C(no_metadata=False)),
    "LC317": (C(enable_bucket=True, bucket_reso_steps=3), C(enable_bucket=True, bucket_reso_steps=64)),
    "LC318": (C(training_comment="mychar_v2"), C(training_comment="trigger", output_name="mychar_v2")),
    "LC319": (C(network_weights="a.safetensors"), C(network_weights="a.safetensors", resume="out/last-state")),
    "LC320": (C(network_dim=8), C(network_dim=8, learning_rate=1e-4)),
    "LC321": (C("derrian-argstore", output_name="True", keys={"output_name": "change_output_name"},
                raw={"output_name": True}),
              C("derrian-argstore", output_name="mine", keys={"output_name": "change_output_name"})),
    "LC322": (C(K, notes=(Note("kohya-folder-empty", "train_data_dir 'img' has no <repeats>_<name> sub-folders",
                                Origin(SRC, "train_data_dir", 4)),)),
              C(K, notes=(Note("kohya-folder-missing", "train_data_dir 'img' does not exist here"),))),
    "LC323": (C(max_train_steps=1000, gradient_accumulation_steps=4), C(max_train_steps=1000)),
    "LC324": (C(network_dim=1024, network_alpha=512), C(network_dim=128, network_alpha=64)),
    "LC401": (C(**SDXL, clip_skip=2), C(**SDXL)),
    "LC402": (C(**SDXL, mixed_precision="fp16"), C(**SDXL, mixed_precision="fp16", no_half_vae=True)),
    "LC403": (C(**SDXL, v2=True), C(**SDXL)),
    "LC404": (C(v_parameterization=True), C(v2=True, v_parameterization=True)),
    "LC405": (C(v2=True, clip_skip=2), C(v2=True)),
    "LC406": (C(cache_text_encoder_outputs=True), C(**TE_CACHE)),
    "LC407": (C(zero_terminal_snr=True), C(zero_terminal_snr=True, v_parameterization=True, v2=True)),
    "LC408": (C(text_encoder_lr=[1e-5, 5e-6]), C(text_encoder_lr=[1e-5, 1e-5])),
    "LC501": (C(wandb_api_key="abcdef0123456789"), C(wandb_api_key="")),
    "LC249": (C("native", notes=(Note("native-rslora-scale", "use_rslora scales by lora_alpha/sqrt(r)",
                                      Origin(SRC, "network.use_rslora", 5)),)),
              C("native", network_dim=16)),
    "LC502": (C(network_module="my_tools.evil_lora"), C(network_module="networks.lora")),
    "LC503": (C(optimizer_type="my_pkg.optim.Magic"), C(optimizer_type="AdamW")),
    "LC504": (C(lr_scheduler_type="my_pkg.Sched"), C(lr_scheduler_type="CosineAnnealingLR")),
    "LC505": (C(dataset_class="mydata.loader.MyDataset"), C(dataset_config="dataset.toml")),
    "LC506": (C(save_model_as="ckpt"), C(save_model_as="safetensors")),
    "LC507": (C(network_weights="lora.pt", resume="s"), C(network_weights="lora.safetensors", resume="s")),
    "LC508": (C(log_with="wandb", log_config=True), C(log_with="wandb", log_config=False)),
    "LC601": (C(caption_extension=".txt", keys={"caption_extension": "caption_extention"}),
              C(caption_extension=".txt")),
    "LC602": (C(use_8bit_adam=True), C(optimizer_type="AdamW8bit")),
    "LC603": (C(lr_warmup_steps=0.05), C(lr_warmup_steps=50)),
    "LC604": (C(network_module="locon.locon_kohya"), C(network_module="lycoris.kohya")),
    "LC617": (C(notes=(Note("kohya-gui-key-ignored", "the GUI ignores 'block_lr'", Origin(SRC, "block_lr", 7)),)),
              C(network_dim=8)),
    "LC114": (C(K, notes=(Note("config-file-nested-table", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC250": (C(K, notes=(Note("accelerate-mixed-precision", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC251": (C(K, notes=(Note("kohya-folder-missing", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC252": (C(K, notes=(Note("dataset-config-bad-suffix", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC253": (C(K, notes=(Note("kohya-folder-skipped", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC409": (C(K, notes=(Note("kohya-gui-other-architecture", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC618": (C(K, notes=(Note("kohya-gui-zero-dropped", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC619": (C(K, notes=(Note("kohya-gui-sdxl-only-ignored", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC620": (C(K, notes=(Note("kohya-gui-warmup-dropped-constant", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC621": (C(K, notes=(Note("kohya-gui-epoch-to-steps", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC622": (C(K, notes=(Note("kohya-gui-sample-prompts-text", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC623": (C(K, notes=(Note("kohya-gui-accelerate-options", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC624": (C(K, notes=(Note("kohya-gui-t5xxl-lr-needs-te", "what the reader saw", Origin(SRC, "k", 3)),)), C(K, network_dim=8)),
    "LC606": (C("derrian-argstore", era="A1", frontend=(("text_only", True), ("unet_only", True))),
              C("derrian-argstore", era="A2", frontend=(("text_only", True), ("unet_only", True)))),
    "LC607": (C("derrian-argstore", era="A1", frontend=(("gradient_acc_steps", 4),)),
              C("derrian-argstore", era="A1", gradient_checkpointing=True, frontend=(("gradient_acc_steps", 4),))),
    "LC608": (C("derrian-argstore", notes=(Note("derrian-a1-random-crop-dropped", "random_crop dropped"),)),
              C("derrian-argstore", era="A1", cache_latents=True)),
    "LC609": (C(K, frontend=(("LoRA_type", "Standard"), ("conv_dim", 8))),
              C(K, frontend=(("LoRA_type", "Kohya LoCon"), ("conv_dim", 8)))),
    "LC610": (C(K, frontend=(("use_wandb", True),)), C(K, log_with="wandb", frontend=(("use_wandb", True),))),
    "LC611": (C(K, max_train_steps=1600, frontend=(("epoch", 10),)),
              C(K, max_train_steps=1600, max_train_epochs=10, frontend=(("epoch", 10),))),
    "LC612": (C(K, tab="lora", frontend=(("stop_text_encoder_training", 50),)),
              C(K, tab="lora", frontend=(("stop_text_encoder_training", 0),))),
    "LC613": (C(K, frontend=(("locon", True),)), C(K, frontend=(("locon", False),))),
    "LC614": (C(network_args=["algo=diag-oft", "constrain=0.1"]), C(network_args=["algo=diag-oft", "constraint=0.1"])),
    "LC615": (C(K, xformers="xformers", raw={"xformers": True}), C(K, xformers="xformers")),
    "LC616": (C(huggingface_repo_id="False"), C(huggingface_repo_id="me/repo")),
}


def codes(cfg: CanonicalConfig) -> set[str]:
    return {f.code for f in lint_config(cfg, all_rules())}


def test_every_rule_has_cases() -> None:
    assert sorted(CASES) == [r.code for r in all_rules()]


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_triggers_and_stays_quiet(code: str) -> None:
    bad, good = CASES[code]
    assert code in codes(bad), f"{code} did not trigger"
    assert code not in codes(good), f"{code} triggered on the good config"


def test_at_least_forty_rules_and_every_family() -> None:
    rules = all_rules()
    assert len(rules) >= 40
    assert {r.code[:3] for r in rules} == {"LC1", "LC2", "LC3", "LC4", "LC5", "LC6"}
    assert get_rule("LC605") is None   # retired: split (an alias of several rules)


def test_findings_point_at_the_key_as_written() -> None:
    cfg = C(K, lr_warmup_steps=0, keys={"lr_warmup_steps": "lr_warmup"}, raw={"lr_warmup_steps": 0.05})
    (f,) = [f for f in lint_config(cfg, [get_rule("LC203")])]
    assert (f.file, f.key, f.line) == (SRC, "lr_warmup", 1)
    sub = C(subsets=[{"keep_tokens": 2}])
    (g,) = lint_config(sub, [get_rule("LC205")])
    assert g.key == "datasets[0].subsets[0].keep_tokens" and g.line == 60 and "subsets[0]" in g.message


def test_alpha_default_severity_depends_on_whether_it_was_written() -> None:
    rule = get_rule("LC202")
    (unset,) = lint_config(C(network_dim=64), [rule])
    (explicit,) = lint_config(C(network_dim=64, network_alpha=1), [rule])
    assert unset.severity == "warning" and "1/64" in unset.message
    assert explicit.severity == "info"


def test_subset_values_override_command_line_options() -> None:
    # shuffle on the command line, keep_tokens only in a subset: the subset resolves both -> no LC205
    cfg = C(shuffle_caption=True, subsets=[{"keep_tokens": 1}, {"keep_tokens": 1, "shuffle_caption": False}])
    found = [f for f in lint_config(cfg, [get_rule("LC205")])]
    assert [f.key for f in found] == ["datasets[0].subsets[1].keep_tokens"]


def test_bucket_steps_rule_uses_architecture() -> None:
    rule = get_rule("LC213")
    assert lint_config(C(enable_bucket=True, bucket_reso_steps=96), [rule])          # SD1: not a multiple of 64
    assert not lint_config(C(sdxl=True, enable_bucket=True, bucket_reso_steps=96), [rule])   # SDXL: 96 % 32 == 0
    assert not lint_config(C(enable_bucket=False, bucket_reso_steps=96), [rule])     # bucketing off: not checked


def test_credential_never_in_messages() -> None:
    secret = "wandb-0123456789abcdef"
    cfg = C(wandb_api_key=secret, unknown=(("my_password", secret),))
    findings = lint_config(cfg, all_rules())
    assert any(f.code == "LC501" for f in findings)
    assert all(secret not in f.message and secret not in (f.key or "") for f in findings)


def test_inverse_sqrt_without_warmup_or_timescale() -> None:
    rule = get_rule("LC219")
    assert lint_config(C(lr_scheduler="inverse_sqrt"), [rule])
    assert not lint_config(C(lr_scheduler="inverse_sqrt", lr_scheduler_timescale=500), [rule])
    assert not lint_config(C(lr_scheduler="inverse_sqrt", lr_warmup_steps=100), [rule])


def test_rank_width_depends_on_architecture() -> None:
    rule = get_rule("LC324")
    assert lint_config(C(network_dim=512), [rule])                       # SD1: narrowest layer 320
    assert not lint_config(C(sdxl=True, network_dim=512), [rule])        # SDXL LoRA: narrowest layer 640
    assert lint_config(C(sdxl=True, network_dim=512, network_args=["conv_dim=8"]), [rule])   # LoCon: 320


def test_adafactor_relative_step_forces_its_schedule() -> None:
    # default relative_step=True: the schedule becomes adafactor:<lr>, so any warmup raises ValueError
    assert "LC218" in codes(C(optimizer_type="Adafactor", lr_scheduler="constant_with_warmup", lr_warmup_steps=50))
    assert "LC218" not in codes(C(optimizer_type="Adafactor", optimizer_args=["relative_step=False"],
                                  lr_scheduler="constant_with_warmup", lr_warmup_steps=50))
    (f,) = lint_config(C(optimizer_type="Adafactor", lr_scheduler="adafactor"), [get_rule("LC232")])
    assert f.severity == "info"
    assert "LC248" in codes(C(optimizer_type="Adafactor", optimizer_args=["relative_step=False"],
                              lr_scheduler="adafactor"))


def test_foreign_scheduler_is_reported_once() -> None:
    found = codes(C(lr_scheduler="plateau"))
    assert "LC314" in found and "LC110" not in found


def test_notes_are_reported_once_by_their_home_rule() -> None:
    note = Note("kohya-gui-use-wandb-dropped", "use_wandb dropped", Origin(SRC, "use_wandb", 5))
    found = lint_config(C(K, notes=(note,)), all_rules())
    assert [f.code for f in found if f.note == note.code] == ["LC610"]
    # a note whose home rule's own check stays silent still reaches the user, through that rule, tagged with its
    # code (so `lora-compat explain kohya-gui-caption-extension-empty` tells what it means)
    other = Note("kohya-gui-caption-extension-empty", "caption_extension empty", Origin(SRC, "x", 5))
    (f,) = [f for f in lint_config(C("native", caption_extension=".txt", notes=(other,)), all_rules())
            if f.code == "LC234"]
    assert f.note == other.code and f.message == "caption_extension empty [kohya-gui-caption-extension-empty]"


def test_every_reader_note_has_exactly_one_home_rule() -> None:
    from lora_compat.config.notes import NOTE_CODES
    from lora_compat.lint.registry import note_homes

    homes = note_homes()
    assert sorted(homes) == sorted(NOTE_CODES), "give each new note code a home rule (note_codes) in lint/rules"
    for code, rule in homes.items():
        cfg = C(K, notes=(Note(code, "seen", Origin(SRC, "k", 3)),))
        if code in rule.quiet_notes:
            continue
        assert rule.code in codes(cfg), (code, rule.code)


def test_retired_lc605_still_selects_what_it_reported() -> None:
    from lora_compat.lint.registry import select_rules

    split = {r.code for r in select_rules(["LC605"])}
    assert {"LC617", "LC618", "LC621", "LC622", "LC251", "LC409"} <= split
    assert not split & {r.code for r in select_rules(ignore=["frontend-quirk"])}
