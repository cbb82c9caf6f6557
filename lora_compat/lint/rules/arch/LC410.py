"""LC410 model-family-conflict: parts of the config name different model families."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class ModelFamilyConflict(NoteRule):
    """Parts of the config name different model families; sd-scripts would train one of them on the wrong model.

    The family (SD1, SD2, SDXL, FLUX.1, Chroma, SD3 ...) is decided once, from the strongest evidence: the training
    script, then ``network_module``, then options only one family's script has, then the base model's files. Weaker
    evidence that disagrees is reported here: ``networks.lora_flux`` in an SDXL run, a FLUX-only option such as
    ``t5xxl`` beside ``networks.lora``, a base model whose files are another family, or a base model that needs a
    switch the config lacks (``v2`` for an SD2.x checkpoint: train_network.py loads it as SD1 and fails or trains
    the wrong parameterisation; ``model_type = "chroma"`` for Chroma). Make the config say one family.

    **Anti-pattern**

    ```toml
    pretrained_model_name_or_path = "sd_xl_base_1.0.safetensors"
    network_module = "networks.lora"
    t5xxl = "t5xxl_fp16.safetensors"
    ```

    **Best practice**

    ```toml
    pretrained_model_name_or_path = "sd_xl_base_1.0.safetensors"
    network_module = "networks.lora"
    ```
    """

    code, name, severity = "LC410", "arch.model_family_conflict", "warning"
    groups = ("arch",)
    summary = "Parts of the config name different model families (script, network_module, options, base model)."
    reference = "sd-scripts train_network.py, sdxl_train_network.py, flux_train_network.py setup_parser; docs/cli.md"
    note_codes = ("family-conflict", "family-base-model-conflict", "family-switch-missing")
