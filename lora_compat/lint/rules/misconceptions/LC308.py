"""LC308 save-precision-number: save_precision written as a number; it is float/fp16/bf16."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.query import as_number, raw_as_written
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import RawShapeRule


@register
class SavePrecisionNumber(RawShapeRule):
    """``save_precision`` is a dtype name: ``float``, ``fp16`` or ``bf16`` — not a number.

    A widely copied option table says: "save_precision — Float … typically set to 32 or 16". Wrong: the choices are the
    strings ``float`` (fp32), ``fp16`` and ``bf16``; every tensor, alpha included, is cast to it.

    **Anti-pattern**

    ```json
    {"save_precision": 16}
    ```

    **Best practice**

    ```json
    {"save_precision": "fp16"}
    ```
    """

    code, name, severity = "LC308", "misconceptions.save_precision_number", "error"
    groups = ("misconceptions", "precision")
    summary = "save_precision written as a number; it is float/fp16/bf16."
    message = "save_precision = {value!r}: use the dtype name \"float\", \"fp16\" or \"bf16\""
    reference = "sd-scripts library/train_util.py add_training_arguments, networks/lora.py LoRANetwork.save_weights"
    option = "save_precision"
    fixable = True

    # the two numbers people write have one meaning each (16 is ambiguous only between fp16 and bf16 in
    # theory; every front-end that offered "16" meant fp16)
    NAMES: ClassVar[dict[float, str]] = {16.0: "fp16", 32.0: "float"}

    def shaped(self, v: object) -> bool:
        return not isinstance(v, bool) and (isinstance(v, (int, float))
                                            or (isinstance(v, str) and as_number(v) is not None))

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_as_written(cfg, self.option)
        if raw is None or not self.shaped(raw.value):
            return
        n = as_number(raw.value)
        new = self.NAMES.get(n) if n is not None else None
        fix = None
        if new and raw.origin is not None and cfg.dialect != "command-line":
            fix = Fix(f"write save_precision as {new!r}", raw.origin.file, raw.origin.key, value=new,
                      line=raw.origin.line)
        yield self.finding(cfg, origin=raw.origin, option=self.option, fix=fix, value=raw.value)
