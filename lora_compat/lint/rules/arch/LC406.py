"""LC406 sdxl-only-option-on-sd: SDXL-only option in an SD1/SD2 config: ignored."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register

# Options that only sdxl_train_network.py defines; used when the schema has no x-arch.
_SDXL_ONLY_FALLBACK = ("cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk",
                       "disable_mmap_load_safetensors")


def _sdxl_only_options() -> tuple[str, ...]:
    """Options sdxl_train_network.py has and train_network.py lacks (the schema's ``x-scripts``)."""
    try:
        from lora_compat.config.options import option_names, spec

        found = tuple(n for n in option_names()
                      if "sdxl_train_network.py" in ((spec(n) or {}).get("x-scripts") or ()) and n != "sdxl")
    except (OSError, ValueError):
        found = ()
    return found or _SDXL_ONLY_FALLBACK


@register
class SdxlOnlyOptionOnSd(Rule):
    """An SDXL-only option in an SD1/SD2 config is silently ignored.

    ``cache_text_encoder_outputs``, ``cache_text_encoder_outputs_to_disk`` and ``disable_mmap_load_safetensors`` exist
    only in sdxl_train_network.py (and the DiT scripts such as flux_train_network.py); train_network.py ignores them
    in a ``--config_file`` (and rejects them on the command line).

    **Anti-pattern**

    ```toml
    # train_network.py (SD1.5)
    cache_text_encoder_outputs = true
    ```

    **Best practice**

    ```toml
    # SD1.5: text-encoder outputs cannot be cached; remove the option
    ```
    """

    code, name, severity = "LC406", "arch.sdxl_only_option_on_sd", "warning"
    groups = ("arch", "sdxl")
    summary = "SDXL-only option in an SD1/SD2 config: ignored."
    message = "{opt} exists only for SDXL (sdxl_train_network.py): ignored for {arch}"
    reference = "sd-scripts library/sdxl_train_util.py add_sdxl_training_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.is_sdxl or not cfg.is_sd_family:
            return   # SDXL has them; the DiT scripts (FLUX.1 ...) have them too
        for opt in _sdxl_only_options():
            if truthy(cfg.get(opt)):
                yield self.finding(cfg, option=opt, opt=opt, arch="SD2" if cfg.is_v2 else "SD1.x")
