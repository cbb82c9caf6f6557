"""LC208 caption-dropout-every-n-epochs."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, subset_scopes
from lora_compat.lint.registry import Rule, register


@register
class CaptionDropoutEveryNEpochs(Rule):
    """``caption_dropout_every_n_epochs`` drops **all** captions in every N-th epoch — and more often than that.

    It is not "how often dropout is performed": in epochs where ``epoch % N == 0`` every caption is empty. Epochs are
    1-based but lag inside DataLoader workers: with non-persistent workers (the default) the first batch of each worker
    in *every* epoch sees epoch 0, and ``0 % N == 0``, so those batches lose their captions too. Prefer
    ``caption_dropout_rate``.

    **Anti-pattern**

    ```toml
    caption_dropout_every_n_epochs = 2
    ```

    **Best practice**

    ```toml
    caption_dropout_rate = 0.05
    ```
    """

    code, name, severity = "LC208", "captions.caption_dropout_every_n_epochs", "warning"
    groups = ("captions",)
    summary = "caption_dropout_every_n_epochs empties ALL captions every N epochs (plus first batches, by lag)."
    message = ("caption_dropout_every_n_epochs = {n}{where} trains whole epochs without captions (and each worker's "
               "first batch of every epoch)")
    reference = "sd-scripts library/train_util.py BaseDataset.process_caption, collator_class"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            n = as_number(sc.value(cfg, "caption_dropout_every_n_epochs", 0)) or 0
            if n > 0:
                yield self.finding(cfg, origin=sc.origin(cfg, "caption_dropout_every_n_epochs"),
                                   option="caption_dropout_every_n_epochs", n=int(n), where=sc.where)
