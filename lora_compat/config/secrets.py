"""Credentials that may appear in configs. They are flagged by lint and never written to any output."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lora_compat.config.model import CanonicalConfig

# Canonical / legacy key names that hold credentials (matched case-insensitively on the last path part).
SECRET_KEYS = frozenset({
    "wandb_api_key", "huggingface_token", "hf_token", "huggingface_repo_token", "api_key", "token",
    "access_token", "auth_token", "secret", "password", "civitai_token", "civitai_api_key",
})
# A credential word at the end of the key, preceded by a service/credential word for "token" so that
# option names such as ``num_vectors_per_token`` or ``max_token_length`` are not taken for secrets.
_SECRET_RE = re.compile(
    r"(^|_)(api_?key|secret|secret_key|password|passwd"
    r"|(hf|huggingface|wandb|civitai|auth|access|api|bearer|github|hub|repo)_token)$",
    re.I,
)
REDACTED = "***REDACTED***"


def is_secret_key(key: str) -> bool:
    """True when a key (any dialect, any path) names a credential."""
    last = re.split(r"[.\[\]]", key.strip("-"))
    last_part = [p for p in last if p][-1] if any(last) else key
    last_part = last_part.lower()
    if last_part in SECRET_KEYS:
        return True
    return bool(_SECRET_RE.search(last_part))


def redact(key: str, value: Any) -> Any:
    """The value to show for ``key``: REDACTED for credentials that are set, else the value."""
    if value not in (None, "") and is_secret_key(key):
        return REDACTED
    return value


def redact_words(words: list[str]) -> list[str]:
    """Command-line words with the value of every credential option redacted (``--wandb_api_key KEY`` and
    ``--hf_token=KEY`` forms), for messages that quote a command line."""
    out: list[str] = []
    hide_next = False
    for w in words:
        if hide_next and not w.startswith("--"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, eq, value = w[2:].partition("=") if w.startswith("--") else ("", "", "")
        if name and is_secret_key(name):
            if eq:
                out.append(f"--{name}={REDACTED if value else ''}")
                continue
            hide_next = True
        out.append(w)
    return out


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every credential value found in ``text`` (defence in depth: no output ever shows one, even where
    a value travels inside another string, e.g. a kohya_ss additional_parameters line)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_strings(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with :func:`redact_text` applied to every string."""
    secrets = list(secrets)
    if not secrets:
        return value
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, list):
        return [redact_strings(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: redact_strings(v, secrets) for k, v in value.items()}
    return value


def iter_secret_values(cfg: CanonicalConfig) -> Iterator[str]:
    """Every credential value in the config (for redaction of all outputs)."""
    for name, s in cfg.options.items():
        if is_secret_key(name):
            # an origin's raw value is the credential only when its key is a credential key; a carrier such as
            # the GUI's additional_parameters line keeps its other words (the credential inside is still redacted)
            raws = [o.raw for o in s.prov.origins if not o.key or is_secret_key(o.key)]
            for v in (s.value, *raws):
                if isinstance(v, str) and v:
                    yield v
    for k in list(cfg.unknown_keys) + list(cfg.frontend_only):
        if is_secret_key(k.key) and isinstance(k.value, str) and k.value:
            yield k.value
    for inv in cfg.invalid:
        if (is_secret_key(inv.option) or is_secret_key(inv.origin.key)) and isinstance(inv.value, str) and inv.value:
            yield inv.value
