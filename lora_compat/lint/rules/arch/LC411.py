"""LC411 model-family-uncertain: the model family rests on a hint (a file name, shared options)."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class ModelFamilyUncertain(NoteRule):
    """The model family rests on a hint: a base model's file name, or options several families share.

    A base model named ``flux1-dev.safetensors`` in a config that otherwise trains SDXL, or ``t5xxl`` alone (FLUX.1
    and SD3 both have it), leave the family to a guess; lora-compat takes the stronger evidence and says so. Names
    can lie, so this is information: check that the family ``lora-compat show`` names is the one you train, and
    name the script (``sdxl_train_network.py`` ...) or the network module to make it certain.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "pretrained_model_name_or_path": "flux1-dev.safetensors", "max_train_steps": 1600}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "pretrained_model_name_or_path": "v1-5-pruned.safetensors", "max_train_steps": 1600}
    ```
    """

    code, name, severity = "LC411", "arch.model_family_uncertain", "info"
    groups = ("arch",)
    summary = "The model family rests on a hint (a base model's file name, options several families share)."
    reference = "sd-scripts flux_train_network.py, sd3_train_network.py setup_parser; docs/cli.md (show: family)"
    note_codes = ("family-base-model-name", "family-ambiguous")
