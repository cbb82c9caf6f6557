"""LC318 training-comment-not-filename: training_comment set without output_name: the file is still named 'last'."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class TrainingCommentNotFilename(Rule):
    """``training_comment`` goes into the metadata only; it does not name the file.

    A widely copied option table says: "training_comment — a comment that will be added to the name of the saved model".
    Wrong: it is stored as ``ss_training_comment`` inside the file; the name comes from ``output_name`` (default
    ``last``).

    **Anti-pattern**

    ```json
    {"training_comment": "mychar_v2", "change_output_name": null}
    ```

    **Best practice**

    ```json
    {"training_comment": "trigger: mychar", "change_output_name": "mychar_v2"}
    ```
    """

    code, name, severity = "LC318", "misconceptions.training_comment_not_filename", "info"
    groups = ("misconceptions", "outputs")
    summary = "training_comment set without output_name: the file is still named 'last'."
    message = "training_comment is stored in metadata only; without output_name the file is named 'last'"
    reference = "sd-scripts train_network.py setup_parser, library/train_util.py save_and_remove_state_stepwise"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("training_comment") and not cfg.get("output_name"):
            yield self.finding(cfg, option="training_comment")
