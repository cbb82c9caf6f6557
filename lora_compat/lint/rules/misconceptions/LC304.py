"""LC304 xformers-list: xformers written as a list of augmentations; it is an attention-kernel switch."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import RawShapeRule


@register
class XformersList(RawShapeRule):
    """``xformers`` selects memory-efficient attention; it is not a list of data "transformers".

    A widely copied option table says: "xformers — List of strings. Specifies the transformers to use during training …
    random cropping, flipping, rotation". Wrong: it is a flag choosing the xformers attention kernel (kohya_ss later:
    the string ``"xformers"``/``"sdpa"``/``"none"``); numerical results differ only slightly. Augmentations are
    ``flip_aug``, ``color_aug``, ``random_crop``.

    **Anti-pattern**

    ```json
    {"xformers": ["random_crop", "flip"]}
    ```

    **Best practice**

    ```json
    {"xformers": true, "flip_aug": true}
    ```
    """

    code, name, severity = "LC304", "misconceptions.xformers_list", "error"
    groups = ("misconceptions", "schema")
    summary = "xformers written as a list of augmentations; it is an attention-kernel switch."
    message = "xformers = {value!r}: xformers is an attention implementation switch, not a list of augmentations"
    reference = "sd-scripts library/train_util.py add_training_arguments"
    option = "xformers"

    def shaped(self, v: object) -> bool:
        return isinstance(v, (list, tuple, dict))
