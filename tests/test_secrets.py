"""Credential detection: real credentials are recognised, token-count options are not."""

from __future__ import annotations

import pytest

from lora_compat.config.secrets import REDACTED, is_secret_key, redact


@pytest.mark.parametrize("key", ["wandb_api_key", "huggingface_token", "hf_token", "huggingface_repo_token",
                                 "logging_args.args.wandb_api_key", "--wandb_api_key", "civitai_api_key",
                                 "password", "token"])
def test_credentials_are_secret(key: str) -> None:
    assert is_secret_key(key)
    assert redact(key, "hunter2") == REDACTED


@pytest.mark.parametrize("key", ["num_vectors_per_token", "max_token_length", "keep_tokens", "token_string",
                                 "keep_tokens_separator", "token_warmup_min", "huggingface_repo_id"])
def test_option_names_with_token_words_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)
    assert redact(key, "x") == "x"


def test_unset_credentials_are_shown_as_unset() -> None:
    assert redact("wandb_api_key", "") == ""
    assert redact("wandb_api_key", None) is None


def test_redact_words_hides_credential_option_values() -> None:
    from lora_compat.config.secrets import REDACTED, redact_words

    words = ["--wandb_api_key", "k1", "--hf_token=k2", "--huggingface_token", "--network_dim", "8", "--api_key="]
    assert redact_words(words) == ["--wandb_api_key", REDACTED, f"--hf_token={REDACTED}", "--huggingface_token",
                                   "--network_dim", "8", "--api_key="]


def test_refused_additional_parameters_never_echo_a_credential(tmp_path) -> None:
    import json

    from lora_compat.config.load import load_config
    from lora_compat.lint.registry import all_rules
    from lora_compat.lint.runner import lint_config

    p = tmp_path / "k.json"
    p.write_text(json.dumps({"LoRA_type": "Standard", "max_resolution": "512,512",
                             "additional_parameters": "--huggingface_token hf_secret123 --frobnicate"}))
    cfg = load_config(str(p), resolve_dataset=False)
    (inv,) = cfg.invalid
    assert "hf_secret123" not in inv.value + inv.reason and "--frobnicate" in inv.value
    assert all("hf_secret123" not in f.message for f in lint_config(cfg, all_rules()))
