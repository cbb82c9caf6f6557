"""LC307 v-parameterization-string: v_parameterization written as a normalization name; it is the v-prediction flag."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import RawShapeRule


@register
class VParameterizationString(RawShapeRule):
    """``v_parameterization`` is a flag (v-prediction target), not a normalization method.

    A widely copied option table says: "v_parameterization — "spectral_norm", "instance_norm", or "batch_norm"". Wrong:
    it switches the training target to the velocity ``v`` (for v-prediction models such as SD2-768-v) and changes the
    SNR loss weights. Any non-empty string is truthy, so it silently turns v-prediction ON.

    **Anti-pattern**

    ```json
    {"v_parameterization": "batch_norm"}
    ```

    **Best practice**

    ```json
    {"v2": true, "v_parameterization": true}
    ```
    """

    code, name, severity = "LC307", "misconceptions.v_parameterization_string", "error"
    groups = ("misconceptions", "schema")
    summary = "v_parameterization written as a normalization name; it is the v-prediction flag."
    message = "v_parameterization = {value!r} is a v-prediction on/off flag; a non-empty string turns v-prediction ON"
    reference = "sd-scripts library/train_util.py add_sd_models_arguments"
    option = "v_parameterization"

    def shaped(self, v: object) -> bool:
        return isinstance(v, str) and v.strip().lower() not in ("true", "false", "")
