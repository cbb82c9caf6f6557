"""LC501 credential-in-config: A credential (wandb_api_key, huggingface_token, ...) is stored in the config."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.config.secrets import is_secret_key
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.registry import Rule, register


def _is_credential_option(name: str) -> bool:
    """A canonical option holding a credential: the schema's ``x-secret`` decides when it knows the option.

    (``is_secret_key`` alone also matches e.g. ``num_vectors_per_token``, which is a count.)
    """
    try:
        from lora_compat.config.options import spec

        s = spec(name)
    except (OSError, ValueError):
        s = None
    if s is not None:
        return bool(s.get("x-secret"))
    return is_secret_key(name)


@register
class CredentialInConfig(Rule):
    """A credential (API key, token, password) is stored in the config.

    Configs get shared, committed and posted in issues; ``wandb_api_key`` and ``huggingface_token`` are written by the
    kohya_ss GUI and Derrian's UI into the file. lora-compat never prints the value (every output format redacts it),
    and ``lint --fix`` always blanks it in the fixed copy. Put the credential in the environment instead
    (``WANDB_API_KEY``, ``HF_TOKEN``) — both libraries read it from there.

    **Anti-pattern**

    ```json
    {"wandb_api_key": "0123456789abcdef..."}
    ```

    **Best practice**

    ```json
    {"wandb_api_key": ""}
    ```
    """

    code, name, severity = "LC501", "security.credential_in_config", "error"
    groups = ("security",)
    summary = "A credential (wandb_api_key, huggingface_token, ...) is stored in the config."
    message = "{key} holds a credential (value redacted): remove it and use an environment variable"
    reference = ("kohya_ss kohya_gui/lora_gui.py; LoRA_Easy_Training_Scripts ArgsList.py; sd-scripts "
                 "train_network.py NetworkTrainer.train")
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        seen: set[tuple[str, int | None]] = set()
        places = []
        # credentials are non-empty strings (``num_vectors_per_token = 8`` matches the name pattern, not this)
        for name, s in cfg.options.items():
            if _is_credential_option(name) and isinstance(s.value, str) and s.value:
                places.append((s.prov.origin, name))
        for k in list(cfg.unknown_keys) + list(cfg.frontend_only):
            if is_secret_key(k.key) and isinstance(k.value, str) and k.value:
                places.append((k.origin, k.key))
        for inv in cfg.invalid:
            if is_secret_key(inv.origin.key) and isinstance(inv.value, str) and inv.value:
                places.append((inv.origin, inv.option))
        for origin, name in places:
            key = origin.key if origin else name
            if (key, origin.line if origin else None) in seen:
                continue
            seen.add((key, origin.line if origin else None))
            fix = None
            if origin is not None:
                fix = Fix(f"blank the credential {key}", origin.file, origin.key, value="", line=origin.line)
            yield self.finding(cfg, origin=origin, option=name, fix=fix, key=key)
