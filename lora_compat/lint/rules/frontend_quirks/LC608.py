"""LC608 derrian-a1-random-crop-dropped: Derrian A1: random_crop dropped when cache_latents is on."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import raw_value, truthy
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import QuirkRule


@register
class DerrianA1RandomCropDropped(QuirkRule):
    """Derrian A1 silently drops ``random_crop`` when ``cache_latents`` is on.

    sd-scripts would refuse the combination (LC209); A1 simply did not pass ``--random_crop``, so the original run had
    no random cropping.

    **Anti-pattern**

    ```json
    {"random_crop": true, "cache_latents": true}
    ```

    **Best practice**

    ```json
    {"random_crop": false, "cache_latents": true}
    ```
    """

    code, name, severity = "LC608", "frontend_quirks.derrian_a1_random_crop_dropped", "warning"
    groups = ("frontend_quirks", "training")
    summary = "Derrian A1: random_crop dropped when cache_latents is on."
    message = "{detail}"
    reference = "LoRA_Easy_Training_Scripts ArgsList.py; LoRA_Easy_Training_Scripts main.py"
    note_codes = ("derrian-a1-random-crop-dropped",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.era != "A1":
            return
        r = raw_value(cfg, None, keys=("random_crop",))
        if r and truthy(r.value) and truthy(cfg.get("cache_latents")):
            yield self.finding(cfg, origin=r.origin,
                               detail="random_crop was dropped by Derrian A1 because cache_latents is on")
