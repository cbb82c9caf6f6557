"""LC253 image-folder-skipped: sd-scripts skips an image sub-folder whose name is not <repeats>_<name>."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class ImageFolderSkipped(NoteRule):
    """An image sub-folder is skipped: its name does not start with ``<repeats>_``.

    With ``train_data_dir`` sd-scripts reads each sub-folder as ``<repeats>_<class tokens>``
    (``DreamBoothDataset`` / ``read_subset_from_folder``): a folder named ``images`` or ``0_char`` (repeats < 1)
    is skipped with only a log line, and its pictures are never trained. Rename the folder, e.g. ``10_mychar``.

    **Anti-pattern**

    ```text
    img/
      mychar/          <- skipped: no "<repeats>_" prefix
        001.png
    ```

    **Best practice**

    ```text
    img/
      10_mychar/
        001.png
    ```
    """

    code, name, severity = "LC253", "data.image_folder_skipped", "warning"
    groups = ("data",)
    aliases = ("LC605", "frontend-quirk")
    summary = "An image sub-folder without a '<repeats>_' prefix: sd-scripts skips its images."
    reference = "sd-scripts library/train_util.py DreamBoothDataset.__init__ (read_subset_from_folder)"
    note_codes = ("kohya-folder-skipped",)
