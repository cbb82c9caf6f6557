"""LC252 dataset-config-refused: sd-scripts refuses this dataset config."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class DatasetConfigRefused(NoteRule):
    """sd-scripts refuses the dataset config this file points at.

    ``config_util.load_user_config`` reads only ``.toml`` and ``.json`` files and raises ``ValueError`` for any
    other suffix; lora-compat does not read such a file either (it may be anything). A subset with
    ``conditioning_data_dir`` (a ControlNet-style conditioning folder) is accepted only together with
    ``--masked_loss``. Rename the file, or add the option the subsets need.

    **Anti-pattern**

    ```toml
    dataset_config = "dataset.yaml"
    ```

    **Best practice**

    ```toml
    dataset_config = "dataset.toml"
    ```
    """

    code, name, severity = "LC252", "data.dataset_config_refused", "error"
    groups = ("data",)
    aliases = ("LC605", "frontend-quirk")
    summary = "sd-scripts refuses this dataset config (suffix, or subsets that need --masked_loss)."
    reference = "sd-scripts library/config_util.py load_user_config, ConfigSanitizer"
    note_codes = ("dataset-config-bad-suffix", "dataset-needs-masked-loss")
