"""LC309 mixed-precision-boolean: mixed_precision written as a boolean; it is no/fp16/bf16."""

from __future__ import annotations

from lora_compat.lint.query import is_boolish
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import RawShapeRule


@register
class MixedPrecisionBoolean(RawShapeRule):
    """``mixed_precision`` is ``no``, ``fp16`` or ``bf16`` — not a boolean.

    A widely copied option table says: "mixed_precision — Boolean". Wrong: it names the dtype the frozen base model is
    cast to. ``true`` says nothing about which half-precision type to use.

    **Anti-pattern**

    ```json
    {"mixed_precision": true}
    ```

    **Best practice**

    ```json
    {"mixed_precision": "bf16"}
    ```
    """

    code, name, severity = "LC309", "misconceptions.mixed_precision_boolean", "error"
    groups = ("misconceptions", "precision")
    summary = "mixed_precision written as a boolean; it is no/fp16/bf16."
    message = "mixed_precision = {value!r}: use \"no\", \"fp16\" or \"bf16\""
    reference = "sd-scripts library/train_util.py add_training_arguments"
    option = "mixed_precision"

    def shaped(self, v: object) -> bool:
        return is_boolish(v)
