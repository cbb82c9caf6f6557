"""LC114 config-file-nested-table: a --config_file sub-table hands a whole table to one option."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class ConfigFileNestedTable(NoteRule):
    """A ``--config_file`` TOML sub-table (``[section.option]``) gives that option a table, not a value.

    sd-scripts reads a ``--config_file`` by flattening its top-level sections one level deep
    (``train_util.read_config_from_file``): every key of every ``[section]`` becomes an option. A sub-table such
    as ``[model.network_args]`` therefore arrives as one option holding a dict, which no sd-scripts option
    accepts; argparse never sees it, so nothing stops the run at start. Write the values as the option's own
    type (``network_args`` is a list of ``"key=value"`` strings).

    **Anti-pattern**

    ```toml
    [model]
    pretrained_model_name_or_path = "model.safetensors"

    [model.network_args]
    conv_dim = 4
    ```

    **Best practice**

    ```toml
    [model]
    pretrained_model_name_or_path = "model.safetensors"
    network_args = ["conv_dim=4"]
    ```
    """

    code, name, severity = "LC114", "schema.config_file_nested_table", "warning"
    groups = ("schema",)
    aliases = ("LC605", "frontend-quirk")
    summary = "A --config_file sub-table: sd-scripts flattens one level, the option receives a dict."
    reference = "sd-scripts library/train_util.py read_config_from_file; docs/cli.md (show)"
    note_codes = ("config-file-nested-table",)
