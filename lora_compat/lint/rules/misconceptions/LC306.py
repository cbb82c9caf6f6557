"""LC306 vae-boolean: vae written as a boolean; it is the path of a replacement VAE."""

from __future__ import annotations

from lora_compat.lint.query import is_boolish
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import RawShapeRule


@register
class VaeBoolean(RawShapeRule):
    """``vae`` is the path of a replacement VAE, not a switch.

    A widely copied option table says: "vae — True/False. Specifies whether to use a Variational Autoencoder as the
    backbone". Wrong: Stable Diffusion always has a VAE; ``vae`` names a checkpoint/directory that *replaces* the
    model's own. ``true`` would be used as the path ``"True"``.

    **Anti-pattern**

    ```json
    {"vae": true}
    ```

    **Best practice**

    ```json
    {"vae": "/models/vae/sdxl_vae.safetensors"}
    ```
    """

    code, name, severity = "LC306", "misconceptions.vae_boolean", "error"
    groups = ("misconceptions", "schema")
    summary = "vae written as a boolean; it is the path of a replacement VAE."
    message = "vae = {value!r}: vae is the path of a replacement VAE file, not a switch"
    reference = "sd-scripts library/train_util.py add_sd_models_arguments"
    option = "vae"

    def shaped(self, v: object) -> bool:
        return is_boolish(v)
