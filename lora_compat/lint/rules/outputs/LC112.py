"""LC112 save-model-as-unsupported: save_model_as is not safetensors, ckpt or pt."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.registry import Rule, register


@register
class SaveModelAsUnsupported(Rule):
    """``save_model_as`` must be safetensors, ckpt or pt.

    train_network.py accepts only ``ckpt``, ``pt`` and ``safetensors``. The docs'
    ``diffusers``/``diffusers_safetensors`` do not exist for LoRA training, and the widely copied option table's ``bin``
    was never a choice. From a TOML the bad value is not rejected by argparse and ends up as the file extension.

    **Anti-pattern**

    ```json
    {"save_as": "bin"}
    ```

    **Best practice**

    ```json
    {"save_as": "safetensors"}
    ```
    """

    code, name, severity = "LC112", "outputs.save_model_as_unsupported", "error"
    groups = ("outputs",)
    summary = "save_model_as is not safetensors, ckpt or pt."
    message = "save_model_as = {value!r} is not supported for LoRA training (use safetensors)"
    reference = "sd-scripts train_network.py setup_parser"
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("save_model_as")
        if isinstance(v, str) and v and v not in ("safetensors", "ckpt", "pt"):
            o = cfg.locate("save_model_as")
            fix = Fix("save as safetensors", o.file, o.key, value="safetensors", line=o.line) if o else None
            yield self.finding(cfg, option="save_model_as", fix=fix, value=v)
