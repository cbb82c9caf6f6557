"""LC322 image-folder-not-parent: The image folder has no <repeats>_<name> sub-folders: sd-scripts finds no images."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class ImageFolderNotParent(Rule):
    """The kohya image folder is the *parent* of ``<repeats>_<name>`` folders, not the folder of images.

    A widely copied option table says: "img_folder — the path to the folder containing the training images". With the
    kohya folder convention (``train_data_dir`` / Derrian ``img_folder``) sd-scripts only reads sub-folders named
    ``<repeats>_<name>`` (e.g. ``10_mychar``); images directly inside the folder are ignored, and with no such
    sub-folder the dataset is empty — sd-scripts then logs "No data found" and exits with code 0 without training.

    **Anti-pattern**

    ```text
    img/            <- img_folder
      001.png
      001.txt
    ```

    **Best practice**

    ```text
    img/            <- img_folder
      10_mychar/
        001.png
        001.txt
    ```
    """

    code, name, severity = "LC322", "misconceptions.image_folder_not_parent", "error"
    groups = ("misconceptions", "data")
    summary = "The image folder has no <repeats>_<name> sub-folders: sd-scripts finds no images."
    message = "{detail}"
    reference = ("sd-scripts train_network.py NetworkTrainer.train, library/config_util.py "
                 "generate_dreambooth_subsets_config_by_subdirs, library/train_util.py DreamBoothDataset.__init__")
    note_codes = ("kohya-folder-empty",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for n in self.claimed_notes(cfg):
            yield self.finding(cfg, origin=n.origin,
                               detail=n.message + " (it must hold <repeats>_<name> sub-folders, e.g. 10_mychar)")
