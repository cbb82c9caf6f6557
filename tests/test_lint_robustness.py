"""Rules never raise, whatever types a reader hands them (Hypothesis: random option values and dataset levels)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_compat.config.model import CanonicalConfig, Dataset, Note, Origin, Provenance, Setting, Subset
from lora_compat.lint.registry import all_rules
from lora_compat.lint.runner import lint_config

NAMES = [
    "network_dim", "network_alpha", "network_module", "network_args", "network_dropout", "optimizer_type",
    "optimizer_args", "lr_scheduler", "lr_scheduler_type", "lr_scheduler_args", "lr_warmup_steps",
    "lr_scheduler_num_cycles", "lr_scheduler_power", "learning_rate", "unet_lr", "text_encoder_lr",
    "max_train_steps", "max_train_epochs", "keep_tokens", "keep_tokens_separator", "shuffle_caption",
    "caption_tag_dropout_rate", "caption_dropout_every_n_epochs", "cache_latents", "color_aug", "random_crop",
    "cache_text_encoder_outputs", "network_train_unet_only", "network_train_text_encoder_only", "clip_skip",
    "max_token_length", "bucket_reso_steps", "enable_bucket", "min_bucket_reso", "max_bucket_reso", "resolution",
    "v2", "sdxl", "v_parameterization", "mixed_precision", "save_precision", "save_model_as", "no_half_vae",
    "vae", "xformers", "wandb_api_key", "face_crop_aug_range", "validation_split", "min_timestep",
    "max_timestep", "save_last_n_steps", "save_every_n_steps", "dataset_class", "network_weights",
    "base_weights", "log_with", "log_config", "huggingface_repo_id", "gradient_accumulation_steps",
    "persistent_data_loader_workers", "max_data_loader_n_workers", "adaptive_noise_scale", "noise_offset",
]
# huge ints are valid JSON/TOML (up to 4300 digits) but have no float value: float(10**400) raises OverflowError
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.sampled_from([10**400, -(10**30), 2**64]),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5), scalars, max_size=3))


def _setting(name: str, v, line: int, raw) -> Setting:
    return Setting(v, Provenance(origins=(Origin("f.toml", name, line, None, raw),)))


@settings(max_examples=int(__import__("os").environ.get("LINT_FUZZ", "250")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(opts=st.dictionaries(st.sampled_from(NAMES), values, max_size=12),
       raws=st.dictionaries(st.sampled_from(NAMES), values, max_size=4),
       sub=st.dictionaries(st.sampled_from(NAMES), values, max_size=5),
       dialect=st.sampled_from(["sd-scripts-toml", "kohya-gui", "derrian-argstore", "derrian-toml", "native"]),
       era=st.sampled_from([None, "A1", "K3"]), with_dataset=st.booleans())
def test_rules_never_raise(opts, raws, sub, dialect, era, with_dataset) -> None:
    cfg = CanonicalConfig(dialect=dialect, source="f.toml", era=era)
    for i, (k, v) in enumerate(opts.items()):
        cfg.options[k] = _setting(k, v, i + 1, raws.get(k, v))
    if with_dataset:
        cfg.datasets.append(Dataset(params={k: _setting(k, v, 40, v) for k, v in list(sub.items())[:2]},
                                    subsets=[Subset(params={k: _setting(k, v, 50, v) for k, v in sub.items()})]))
    cfg.notes.append(Note("kohya-gui-key-ignored", "x", Origin("f.toml", "k", 3, None, raws.get("vae"))))
    for f in lint_config(cfg, all_rules()):
        assert f.code and f.message
