"""Which part of sd-scripts' caption processing runs for a dataset scope."""

from __future__ import annotations

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.query import Scope, as_number, truthy


def caption_branch_runs(cfg: CanonicalConfig, sc: Scope) -> bool:
    """The shuffle / token-warmup / tag-dropout branch of sd-scripts' library/train_util.py
    ``BaseDataset.process_caption`` runs for this scope (keep_tokens only acts there)."""
    return (truthy(sc.value(cfg, "shuffle_caption", False))
            or (as_number(sc.value(cfg, "token_warmup_step", 0)) or 0) > 0
            or (as_number(sc.value(cfg, "caption_tag_dropout_rate", 0)) or 0) > 0)
