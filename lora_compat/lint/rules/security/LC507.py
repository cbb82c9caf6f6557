"""LC507 pickle-input-weights: A weights input is a pickle file (.ckpt/.pt/.pth/.bin)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class PickleInputWeights(Rule):
    """A weights file to load is a pickle (``.ckpt``/``.pt``/``.pth``/``.bin``).

    Loading a pickle executes code embedded in it. Prefer ``.safetensors`` for ``network_weights``, ``base_weights``,
    ``vae`` and the base model.

    **Anti-pattern**

    ```toml
    network_weights = "downloaded_lora.pt"
    ```

    **Best practice**

    ```toml
    network_weights = "downloaded_lora.safetensors"
    ```
    """

    code, name, severity = "LC507", "security.pickle_input_weights", "info"
    groups = ("security",)
    summary = "A weights input is a pickle file (.ckpt/.pt/.pth/.bin)."
    message = "{opt} {path!r} is a pickle file: loading it can run code; prefer .safetensors"
    reference = "sd-scripts library/train_util.py add_sd_models_arguments, train_network.py setup_parser"

    OPTIONS = ("pretrained_model_name_or_path", "vae", "network_weights", "base_weights")
    EXTS = (".ckpt", ".pt", ".pth", ".bin")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for opt in self.OPTIONS:
            v = cfg.get(opt)
            paths = v if isinstance(v, (list, tuple)) else [v]
            for p in paths:
                if isinstance(p, str) and p.lower().endswith(self.EXTS):
                    yield self.finding(cfg, option=opt, opt=opt, path=p)
