"""LC506 pickle-output-format: save_model_as ckpt/pt: pickle output (code on load, no metadata)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.registry import Rule, register


@register
class PickleOutputFormat(Rule):
    """``save_model_as`` ckpt/pt writes a pickle: loading it can run code, and it has no metadata.

    ckpt and pt are written with ``torch.save`` and carry no ``ss_*`` metadata. Anyone loading a pickle runs whatever it
    contains; safetensors is data only. The fix switches to safetensors.

    **Anti-pattern**

    ```toml
    save_model_as = "ckpt"
    ```

    **Best practice**

    ```toml
    save_model_as = "safetensors"
    ```
    """

    code, name, severity = "LC506", "security.pickle_output_format", "warning"
    groups = ("security",)
    summary = "save_model_as ckpt/pt: pickle output (code on load, no metadata)."
    message = "save_model_as = {value!r} writes a pickle (runs code when loaded, no metadata): use safetensors"
    reference = "sd-scripts train_network.py setup_parser, networks/lora.py LoRANetwork.save_weights"
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("save_model_as")
        if v in ("ckpt", "pt"):
            o = cfg.locate("save_model_as")
            fix = Fix("save as safetensors", o.file, o.key, value="safetensors", line=o.line) if o else None
            yield self.finding(cfg, option="save_model_as", fix=fix, value=v)
