"""LC302 keep-tokens-vocabulary-size: keep_tokens looks like a vocabulary size; it counts leading caption tags."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, subset_scopes
from lora_compat.lint.registry import Rule, register


@register
class KeepTokensVocabularySize(Rule):
    """``keep_tokens`` counts leading caption *tags* to protect, not a vocabulary size.

    A widely copied option table says: "The number of the most frequent tokens to keep in the text corpus … replaced
    with <unk>". Wrong: ``keep_tokens = N`` keeps the first N comma-separated tags of each caption in place while the
    rest are shuffled or dropped. A vocabulary-sized value protects every tag, so shuffling and tag dropout silently do
    nothing.

    Seen in the wild: bmaltais/kohya_ss#70 ("does a token mean a comma-separated tag or a CLIP token?").

    **Anti-pattern**

    ```json
    {"keep_tokens": 1000}
    ```

    **Best practice**

    ```json
    {"keep_tokens": 1, "shuffle_captions": true}
    ```
    """

    code, name, severity = "LC302", "misconceptions.keep_tokens_vocabulary_size", "warning"
    groups = ("misconceptions", "captions")
    summary = "keep_tokens looks like a vocabulary size; it counts leading caption tags."
    message = ("keep_tokens = {n}{where} keeps the first {n} caption tags fixed (not a vocabulary size): shuffling "
               "and tag dropout do nothing")
    reference = "sd-scripts library/train_util.py BaseDataset.process_caption"

    THRESHOLD = 20

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            n = as_number(sc.value(cfg, "keep_tokens", 0)) or 0
            if n >= self.THRESHOLD:
                yield self.finding(cfg, origin=sc.origin(cfg, "keep_tokens"), option="keep_tokens", n=int(n),
                                   where=sc.where)
