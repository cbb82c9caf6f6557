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
