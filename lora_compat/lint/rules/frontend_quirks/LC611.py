"""LC611 kohya-epoch-unused: kohya_ss epoch with a non-zero max_train_steps: epoch is unused."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, raw_value
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import QuirkRule


@register
class KohyaEpochUnused(QuirkRule):
    """kohya_ss ``epoch`` is not sd-scripts' epochs; it is unused once ``max_train_steps`` is set.

    The GUI turns ``epoch`` into ``max_train_steps`` only when ``max_train_steps`` is 0/empty; since 2024-04-19 the GUI
    default ``max_train_steps`` is 1600, which then overrides ``epoch`` entirely. Use ``max_train_epochs`` for a true
    epoch count.

    **Anti-pattern**

    ```json
    {"epoch": 10, "max_train_steps": 1600}
    ```

    **Best practice**

    ```json
    {"max_train_epochs": 10, "max_train_steps": 0}
    ```
    """

    code, name, severity = "LC611", "frontend_quirks.kohya_epoch_unused", "warning"
    groups = ("frontend_quirks", "training")
    summary = "kohya_ss epoch with a non-zero max_train_steps: epoch is unused."
    message = "{detail}"
    reference = "kohya_ss kohya_gui/lora_gui.py"
    note_codes = ("kohya-gui-epoch-ignored",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "kohya-gui":
            return
        e = raw_value(cfg, None, keys=("epoch",))
        s = raw_value(cfg, None, keys=("max_train_steps",))
        en = as_number(e.value) if e else None
        sn = as_number(s.value) if s else None
        if e and s and en and en > 1 and sn and sn > 0 and not as_number(cfg.get("max_train_epochs")):
            yield self.finding(cfg, origin=e.origin,
                               detail=f"epoch = {e.value} is unused: max_train_steps = {s.value} decides the length "
                                      "(use max_train_epochs)")
