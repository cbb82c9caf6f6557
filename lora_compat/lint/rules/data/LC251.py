"""LC251 input-not-available: a file or folder the config names is not here; what depends on it is unknown."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class InputNotAvailable(NoteRule):
    """A file or folder the config names is not on this machine, so what depends on it is unknown here.

    lora-compat reads configs as they are, anywhere: the image folders, the dataset config or the step count
    derived from them may live on the machine that trained. The reader records what it could not resolve —
    a missing image folder (repeats, class tokens and image counts unknown), a missing dataset config (its
    datasets and subsets are not checked), the kohya_ss GUI's or Derrian's step estimate and a percent/ratio
    warmup that needs those images — and every other rule works with what is known. This is information,
    not a problem with the config; run lint where the data is to check those parts too.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "train_data_dir": "/data/does-not-exist/img", "epoch": 10}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "train_data_dir": "", "epoch": 10, "max_train_steps": 1600, "lr_warmup": 0}
    ```
    """

    code, name, severity = "LC251", "data.input_not_available", "info"
    groups = ("data",)
    aliases = ("LC605", "frontend-quirk")
    summary = "A file or folder the config names is not here: what depends on it is unknown."
    reference = "sd-scripts library/train_util.py DreamBoothDataset (folder names); docs/cli.md (show, plan)"
    note_codes = ("kohya-folder-missing", "dataset-config-missing", "dataset-config-found-by-name",
                  "config-file-missing", "shell-expression-unresolved", "kohya-gui-epoch-steps-unresolved",
                  "derrian-warmup-unresolved", "derrian-toml-warmup-unresolved", "image-folder-unset")
