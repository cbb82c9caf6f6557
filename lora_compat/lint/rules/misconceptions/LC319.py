"""LC319 network-weights-is-not-resume."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class NetworkWeightsIsNotResume(Rule):
    """``network_weights`` (Derrian ``lora_model_for_resume``) only initializes the LoRA; it does not resume.

    A widely copied option table says: "lora_model_for_resume — resume training from a previous checkpoint". Wrong: the
    weights are loaded with ``strict=False`` (mismatches silently tolerated), the optimizer, scheduler and step count
    start fresh, and the file's ``.alpha`` does not change the scale in use. Real resuming is ``resume`` with a
    ``save_state`` folder.

    **Anti-pattern**

    ```json
    {"lora_model_for_resume": "out/last.safetensors"}
    ```

    **Best practice**

    ```json
    {"save_state": true, "resume": "out/last-state"}
    ```
    """

    code, name, severity = "LC319", "misconceptions.network_weights_is_not_resume", "info"
    groups = ("misconceptions", "training")
    summary = "network_weights without resume: weights are initialized, training state is not resumed."
    message = ("{key} only initializes the LoRA weights (strict=False); optimizer, scheduler and step count start "
               "fresh — use resume to continue")
    reference = "sd-scripts train_network.py setup_parser, networks/lora.py LoRANetwork.save_weights"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("network_weights") and not cfg.get("resume"):
            o = cfg.locate("network_weights")
            yield self.finding(cfg, option="network_weights", key=o.key if o else "network_weights")
