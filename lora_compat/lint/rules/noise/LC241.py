"""LC241 timestep-range-empty: min_timestep >= max_timestep: a single timestep is trained."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number
from lora_compat.lint.registry import Rule, register


@register
class TimestepRangeEmpty(Rule):
    """``min_timestep >= max_timestep`` makes every sample use the same timestep.

    Timesteps are drawn with ``randint(min, max)``; if min ≥ max every sample uses ``max``.

    **Anti-pattern**

    ```toml
    min_timestep = 500
    max_timestep = 500
    ```

    **Best practice**

    ```toml
    min_timestep = 0
    max_timestep = 1000
    ```
    """

    code, name, severity = "LC241", "noise.timestep_range_empty", "warning"
    groups = ("noise",)
    summary = "min_timestep >= max_timestep: a single timestep is trained."
    message = "min_timestep {lo} >= max_timestep {hi}: every sample uses timestep {hi}"
    reference = "sd-scripts library/train_util.py add_training_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        lo = as_number(cfg.get("min_timestep"))
        hi = as_number(cfg.get("max_timestep"))
        lo = 0 if lo is None else lo
        hi = 1000 if hi is None else hi
        if ("min_timestep" in cfg.options or "max_timestep" in cfg.options) and lo >= hi:
            yield self.finding(cfg, option="min_timestep" if "min_timestep" in cfg.options else "max_timestep",
                               lo=int(lo), hi=int(hi))
