"""LC246 save-last-n-steps-is-steps: save_last_n_steps smaller than save_every_n_steps: it counts steps, not files."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number
from lora_compat.lint.registry import Rule, register


@register
class SaveLastNStepsIsSteps(Rule):
    """``save_last_n_steps`` is a number of *steps*, not a number of files.

    Step checkpoints older than N steps are removed. A small value such as 3 with ``save_every_n_steps = 100`` deletes
    every previous checkpoint.

    **Anti-pattern**

    ```toml
    save_every_n_steps = 100
    save_last_n_steps = 3          # meant "keep 3 files"
    ```

    **Best practice**

    ```toml
    save_every_n_steps = 100
    save_last_n_steps = 300        # keep the last 3 checkpoints
    ```
    """

    code, name, severity = "LC246", "outputs.save_last_n_steps_is_steps", "warning"
    groups = ("outputs",)
    summary = "save_last_n_steps smaller than save_every_n_steps: it counts steps, not files."
    message = ("save_last_n_steps = {n} counts steps, not files: with save_every_n_steps = {every} only the newest "
               "checkpoint is kept")
    reference = "sd-scripts library/train_util.py add_training_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        n = as_number(cfg.get("save_last_n_steps"))
        every = as_number(cfg.get("save_every_n_steps"))
        if n and every and n < every:
            yield self.finding(cfg, option="save_last_n_steps", n=int(n), every=int(every))
