"""LC412 unsupported-model-family: the config trains a model family lora-compat names but does not check yet."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.arch import families
from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register

# The commands that refuse a family whose stage does not support it (lora_compat.config.family.require_family).
_REFUSING = ((families.MIGRATE, "migrate"), (families.PLAN, "plan"), (families.TRAIN, "train"))


@register
class UnsupportedModelFamily(Rule):
    """The config trains a model family that lora-compat recognises but does not check, migrate or train yet.

    lora-compat decides the model family from what the file says: the training script (``flux_train_network.py``
    …), the kohya_ss GUI's model checkboxes (``flux1_checkbox``, ``sd3_checkbox`` …), Derrian's ``[flux_args]``,
    ``network_module`` (``networks.lora_flux`` …), options only one family's script accepts (``t5xxl``,
    ``guidance_scale`` …) and the base model (``lora-compat show`` prints the family and why). SD3/SD3.5,
    Lumina 2, HunyuanImage-2.1 and Anima are named, but lora-compat does not model their own options yet (FLUX.1
    and Chroma it does): lint checks only what every sd-scripts training script shares, and ``migrate``, ``plan``
    and ``train`` refuse the file with the family's name (exit 2) instead of treating it as SD1.x, which would
    plan and train a UNet LoRA for a model that has none. The finding says how far the checks reach; the file
    may well be right. Check the family's own options against sd-scripts' documentation
    (``docs/sd3_train_network.md`` …) until lora-compat supports the family.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_sd3"
    clip_g = "clip_g.safetensors"
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora"
    ```
    """

    code, name, severity = "LC412", "arch.unsupported_model_family", "warning"
    groups = ("arch",)
    summary = "A model family lora-compat names but does not check or train yet (SD3, Lumina 2 …): partial checks."
    message = ("{label} is not supported yet: lint checks only the options every sd-scripts script shares"
               "{refused} (family from {source})")
    reference = "docs/cli.md (show: Model family); sd-scripts flux_train_network.py, sd3_train_network.py setup_parser"
    # the kohya_ss reader's "another training script" note says the same as this rule's check, which names it
    quiet_notes = ("kohya-gui-other-architecture",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.family is None:
            return
        fam = families.family(cfg.family)
        if fam.supports(families.CONFIG):
            return
        refusing = [command for stage, command in _REFUSING if not fam.supports(stage)]
        refused = f", and {', '.join(refusing)} refuse this file" if refusing else ""
        yield self.finding(cfg, origin=cfg.family_origin, label=fam.label, refused=refused,
                           source=cfg.family_source)
