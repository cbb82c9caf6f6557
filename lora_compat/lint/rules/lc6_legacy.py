"""LC6xx — deprecated keys, legacy front-end quirks (kohya_ss GUI, Derrian scripts) and portability.

Front-end quirks arrive two ways: as ``Note``s recorded by the dialect readers (``cfg.notes``), and as raw keys
in the file. Rules claim the note codes they explain (``note_codes``); :class:`FrontendQuirk` reports every
other note so none is lost.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import RENAME, Finding, Fix
from lora_compat.lint.query import as_number, kv_items, raw_value, truthy
from lora_compat.lint.registry import Rule, all_rules, register


@lru_cache(maxsize=1)
def _note_claimers() -> dict[str, tuple[type[Rule], ...]]:
    """Note code -> the rules that explain it (static once the registry is loaded)."""
    out: dict[str, list[type[Rule]]] = {}
    for r in all_rules():
        for c in r.note_codes:
            out.setdefault(c, []).append(r)
    return {c: tuple(rs) for c, rs in out.items()}


class _QuirkRule(Rule):
    """A front-end quirk: reported from the reader's Note when present, else detected from raw keys."""

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        notes = self.claimed_notes(cfg)
        if notes:
            for n in notes:
                yield self.finding(cfg, origin=n.origin, detail=n.message)
            return
        yield from self.detect(cfg)


@register
class MisspelledLegacyKey(Rule):
    """A misspelled key from an old front-end version (``caption_extention``, ``cache_latent``).

    sd-scripts still accepts ``--caption_extention`` as an alias (sd-scripts-reference.md §1.3); the kohya_ss GUI
    renamed ``cache_latent``/``caption_extention`` on 2023-01-15 and its loader does not migrate them
    (legacy-dialects.md §2.3) — a current GUI ignores the old key. The fix renames the key in place.

    **Anti-pattern**

    ```json
    {"caption_extention": ".txt", "cache_latent": true}
    ```

    **Best practice**

    ```json
    {"caption_extension": ".txt", "cache_latents": true}
    ```
    """

    code, name, severity = "LC601", "misspelled-legacy-key", "warning"
    summary = "caption_extention / cache_latent: old misspelled keys."
    message = "{key!r} is an old misspelling of {good!r}"
    reference = "sd-scripts-reference.md §1.3; legacy-dialects.md §2.3; peers-and-users.md §1g"
    fixable = True

    RENAMES = {"caption_extention": "caption_extension", "cache_latent": "cache_latents"}

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for bad, good in self.RENAMES.items():
            raw = raw_value(cfg, None, keys=(bad,))
            if raw is None or raw.origin is None:
                continue
            fix = Fix(f"rename {bad} to {good}", raw.origin.file, raw.origin.key, action=RENAME, new_key=good,
                      line=raw.origin.line)
            yield self.finding(cfg, origin=raw.origin, fix=fix, key=bad, good=good)


@register
class LegacyOptimizerFlag(Rule):
    """``use_8bit_adam`` / ``use_lion_optimizer`` are legacy spellings of ``optimizer_type``.

    They still work but are asserted against ``optimizer_type`` (sd-scripts-reference.md §1.5, §1.13 E17); the
    kohya_ss GUI replaced ``use_8bit_adam`` with ``optimizer`` in 2023 (legacy-dialects.md §2.3).

    **Anti-pattern**

    ```toml
    use_8bit_adam = true
    ```

    **Best practice**

    ```toml
    optimizer_type = "AdamW8bit"
    ```
    """

    code, name, severity = "LC602", "legacy-optimizer-flag", "info"
    summary = "use_8bit_adam/use_lion_optimizer: legacy flags for optimizer_type."
    message = "{flag} is a legacy flag: write optimizer_type = {name!r}"
    reference = "sd-scripts-reference.md §1.5; legacy-dialects.md §2.3"
    note_codes = ("derrian-optimizer-flag",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("optimizer_type"):
            return   # LC231 reports the conflict
        for flag, name in (("use_8bit_adam", "AdamW8bit"), ("use_lion_optimizer", "Lion")):
            if truthy(cfg.get(flag)):
                yield self.finding(cfg, option=flag, flag=flag, name=name)


@register
class WarmupRatioBeforeSeptember2024(Rule):
    """A float ``lr_warmup_steps`` below 1 only means "ratio" in sd-scripts since 2024-09-11.

    Before fd68703f (2024-09-11) ``lr_warmup_steps`` was ``type=int``; a float from a TOML went to transformers
    as a fractional step count — in effect almost no warmup (sd-scripts-reference.md §10). An old sd-scripts
    checkout runs this config differently from a current one.

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine"
    lr_warmup_steps = 0.05    # on sd-scripts before 2024-09-11
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine"
    lr_warmup_steps = 50      # steps: same meaning on every version
    ```
    """

    code, name, severity = "LC603", "warmup-ratio-before-september-2024", "info"
    summary = "lr_warmup_steps as a ratio (< 1) is only understood by sd-scripts >= 2024-09-11."
    message = "lr_warmup_steps = {v!r} is a ratio only for sd-scripts >= 2024-09-11; older versions ran almost no warmup"
    reference = "sd-scripts-reference.md §10"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect not in ("sd-scripts-toml", "command-line"):
            return
        v = cfg.get("lr_warmup_steps")
        if isinstance(v, float) and 0 < v < 1:
            yield self.finding(cfg, option="lr_warmup_steps", v=v)


@register
class LoconExternalModule(Rule):
    """``locon.locon_kohya`` is the 2023 stand-alone LoCon package, superseded by LyCORIS.

    The kohya_ss GUI used it from 2023-03-02 to 03-09, then switched to ``lycoris.kohya`` with ``algo=locon``
    (legacy-dialects.md §2.5); Derrian A2.1 used ``locon.locon.locon_kohya`` (§3.3).

    **Anti-pattern**

    ```toml
    network_module = "locon.locon_kohya"
    ```

    **Best practice**

    ```toml
    network_module = "lycoris.kohya"
    network_args = ["algo=locon", "conv_dim=8", "conv_alpha=4"]
    ```
    """

    code, name, severity = "LC604", "locon-external-module", "warning"
    summary = "network_module locon.locon_kohya: the superseded 2023 LoCon package."
    message = "network_module {value!r} is the superseded 2023 LoCon package: use lycoris.kohya with algo=locon"
    reference = "legacy-dialects.md §2.5, §3.3"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("network_module")
        if isinstance(v, str) and v.startswith("locon."):
            yield self.finding(cfg, option="network_module", value=v)


@register
class FrontendQuirk(Rule):
    """The legacy front-end silently changed or dropped something this file says.

    The dialect readers reproduce what the kohya_ss GUI or Derrian's scripts *really* passed to sd-scripts and
    record each silent change as a note (legacy-dialects.md §2.1, §3.4, §4.1, §5). This rule reports notes that
    no more specific rule explains; the message says what happened.

    **Anti-pattern**

    ```json
    {"use_wandb": true}
    ```

    **Best practice**

    ```json
    {"log_with": "wandb"}
    ```
    """

    code, name, severity = "LC605", "frontend-quirk", "warning"
    summary = "A legacy front-end silently changed or dropped a setting (reader note)."
    message = "{detail} [{note}]"
    reference = "legacy-dialects.md §2.1, §3.4, §5"

    # Notes that record a faithful conversion rather than a surprise: reported as info.
    INFO_NOTES = frozenset({
        "kohya-folder-missing", "kohya-gui-partial-preset", "kohya-gui-epoch-to-steps",
        "kohya-gui-epoch-steps-unresolved", "kohya-gui-max-train-epochs-wins", "kohya-gui-warmup-percent",
        "kohya-gui-warmup-unresolved", "kohya-gui-warmup-steps-override", "kohya-gui-train-part-from-lr",
        "kohya-gui-sample-prompts-text", "kohya-gui-noise-type-inactive", "kohya-gui-sdxl-only-ignored",
        "kohya-gui-accelerate-options", "kohya-gui-cmdline-era-condition", "kohya-gui-lr-scheduler-cycles-epoch",
        "kohya-gui-wandb-run-name-default", "kohya-gui-t5xxl-lr", "kohya-gui-args-string-split",
        "derrian-kohya-alias", "derrian-warmup-ratio", "derrian-warmup-unresolved", "derrian-toml-warmup-ratio",
        "derrian-toml-warmup-unresolved", "derrian-toml-network-module", "derrian-a2-network-module-ignored",
        "derrian-toml-clip-skip-sdxl", "derrian-toml-ui-only", "derrian-a2-decouple-added",
        "derrian-a1-save-every-default", "derrian-toml-precision-forced", "derrian-toml-dim-from-weights-path",
        "derrian-a1-epochs-to-steps", "derrian-a2-betas-dropped", "kohya-gui-zero-dropped",
        "derrian-a1-condition-dropped", "kohya-gui-additional-parameters", "dataset-config-found-by-name",
        "derrian-a2-falsy-dropped", "derrian-toml-falsy-dropped", "derrian-optimizer-flag",
        "derrian-toml-easy-name", "command-line-launcher",
    })

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        # A note is left to the specific rule that claims its code, but only when that rule really reports
        # something for this config — so no note is ever lost.
        fired: dict[str, bool] = {}
        claimers = _note_claimers()

        def claimed(code: str) -> bool:
            for r in claimers.get(code, ()):
                if r.code not in fired:
                    fired[r.code] = any(True for _ in r().check(cfg))
                if fired[r.code]:
                    return True
            return False

        for n in cfg.notes:
            if not claimed(n.code):
                sev = "info" if n.code in self.INFO_NOTES else None
                yield self.finding(cfg, origin=n.origin, severity=sev, detail=n.message, note=n.code)


@register
class DerrianA1TextOnlyIgnored(_QuirkRule):
    """Derrian A1 ignores ``text_only`` when ``unet_only`` is also on.

    The A1 command builder emits ``--network_train_unet_only`` and skips ``text_only`` (legacy-dialects.md §3.3,
    §3.4; A2 passes both, which leaves nothing to train).

    **Anti-pattern**

    ```json
    {"unet_only": true, "text_only": true}
    ```

    **Best practice**

    ```json
    {"unet_only": true, "text_only": false}
    ```
    """

    code, name, severity = "LC606", "derrian-a1-text-only-ignored", "warning"
    summary = "Derrian A1: text_only is ignored when unet_only is on."
    message = "{detail}"
    reference = "legacy-dialects.md §3.3, §3.4"
    note_codes = ("derrian-a1-unet-wins",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.era != "A1":
            return
        t = raw_value(cfg, None, keys=("text_only",))
        u = raw_value(cfg, None, keys=("unet_only",))
        if t and u and truthy(t.value) and truthy(u.value):
            yield self.finding(cfg, origin=t.origin,
                               detail="text_only is ignored by Derrian A1 because unet_only is also on (UNet-only training ran)")


@register
class DerrianA1GradAccDropped(_QuirkRule):
    """Derrian A1 passes ``gradient_acc_steps`` only together with ``gradient_checkpointing``.

    Without checkpointing the A1 builder silently drops gradient accumulation (legacy-dialects.md §3.3, §3.4):
    the run used an effective batch size of ``batch_size``, not ``batch_size × gradient_acc_steps``.

    **Anti-pattern**

    ```json
    {"gradient_acc_steps": 4, "gradient_checkpointing": false}
    ```

    **Best practice**

    ```json
    {"gradient_acc_steps": 4, "gradient_checkpointing": true}
    ```
    """

    code, name, severity = "LC607", "derrian-a1-grad-acc-dropped", "warning"
    summary = "Derrian A1: gradient_acc_steps dropped without gradient_checkpointing."
    message = "{detail}"
    reference = "legacy-dialects.md §3.3, §3.4"
    note_codes = ("derrian-a1-drops-gradient-acc",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.era != "A1":
            return
        g = raw_value(cfg, None, keys=("gradient_acc_steps",))
        n = as_number(g.value) if g else None
        if g and n and n > 1 and not truthy(cfg.get("gradient_checkpointing")):
            yield self.finding(cfg, origin=g.origin,
                               detail=f"gradient_acc_steps = {g.value} was dropped by Derrian A1 (only passed with gradient_checkpointing)")


@register
class DerrianA1RandomCropDropped(_QuirkRule):
    """Derrian A1 silently drops ``random_crop`` when ``cache_latents`` is on.

    sd-scripts would refuse the combination (LC209); A1 simply did not pass ``--random_crop``
    (legacy-dialects.md §3.3, §3.4), so the original run had no random cropping.

    **Anti-pattern**

    ```json
    {"random_crop": true, "cache_latents": true}
    ```

    **Best practice**

    ```json
    {"random_crop": false, "cache_latents": true}
    ```
    """

    code, name, severity = "LC608", "derrian-a1-random-crop-dropped", "warning"
    summary = "Derrian A1: random_crop dropped when cache_latents is on."
    message = "{detail}"
    reference = "legacy-dialects.md §3.3, §3.4"
    note_codes = ("derrian-a1-random-crop-dropped",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.era != "A1":
            return
        r = raw_value(cfg, None, keys=("random_crop",))
        if r and truthy(r.value) and truthy(cfg.get("cache_latents")):
            yield self.finding(cfg, origin=r.origin,
                               detail="random_crop was dropped by Derrian A1 because cache_latents is on")


@register
class ConvDimIgnoredStandard(_QuirkRule):
    """kohya_ss ``LoRA_type: "Standard"`` ignores ``conv_dim`` / ``conv_alpha``.

    The GUI emits ``conv_dim``/``conv_alpha`` only for the LoCon/LyCORIS/DyLoRA types (legacy-dialects.md §2.4,
    §2.5); with Standard no 3×3 convolution is trained whatever the fields say.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "conv_dim": 8, "conv_alpha": 4}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Kohya LoCon", "conv_dim": 8, "conv_alpha": 4}
    ```
    """

    code, name, severity = "LC609", "conv-dim-ignored-standard", "warning"
    summary = "kohya_ss LoRA_type Standard with conv_dim/conv_alpha: ignored."
    message = "{detail}"
    reference = "legacy-dialects.md §2.4, §2.5"
    note_codes = ("kohya-gui-conv-ignored",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        t = raw_value(cfg, None, keys=("LoRA_type",))
        if t is None or t.value != "Standard":
            return
        for key in ("conv_dim", "conv_alpha"):
            r = raw_value(cfg, None, keys=(key,))
            n = as_number(r.value) if r else None
            if r and n is not None and n > 1 and not any(k == key for k, _ in kv_items(cfg.get("network_args"))):
                yield self.finding(cfg, origin=r.origin,
                                   detail=f"{key} = {r.value} is ignored: LoRA_type 'Standard' trains no conv layers")


@register
class KohyaUseWandbDropped(_QuirkRule):
    """kohya_ss drops ``use_wandb: true``: wandb logging silently stays off.

    Since 2024-04-19 the GUI loader migrates ``use_wandb`` to ``log_with = "wandb"`` only when the value is the
    *string* ``"True"``; real files store a JSON boolean (legacy-dialects.md §2.1).

    **Anti-pattern**

    ```json
    {"use_wandb": true}
    ```

    **Best practice**

    ```json
    {"log_with": "wandb"}
    ```
    """

    code, name, severity = "LC610", "kohya-use-wandb-dropped", "warning"
    summary = "kohya_ss use_wandb: true is silently dropped by the GUI loader."
    message = "{detail}"
    reference = "legacy-dialects.md §2.1"
    note_codes = ("kohya-gui-use-wandb-dropped",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        r = raw_value(cfg, None, keys=("use_wandb",))
        if r and r.value is True and not cfg.get("log_with"):
            yield self.finding(cfg, origin=r.origin,
                               detail="use_wandb: true is dropped by the kohya_ss loader (only the string \"True\" is migrated): no wandb logging")


@register
class KohyaEpochUnused(_QuirkRule):
    """kohya_ss ``epoch`` is not sd-scripts' epochs; it is unused once ``max_train_steps`` is set.

    The GUI turns ``epoch`` into ``max_train_steps`` only when ``max_train_steps`` is 0/empty; since 2024-04-19 the
    GUI default ``max_train_steps`` is 1600, which then overrides ``epoch`` entirely (legacy-dialects.md §2.4, §2.6,
    §5 item 2). Use ``max_train_epochs`` for a true epoch count.

    **Anti-pattern**

    ```json
    {"epoch": 10, "max_train_steps": 1600}
    ```

    **Best practice**

    ```json
    {"max_train_epochs": 10, "max_train_steps": 0}
    ```
    """

    code, name, severity = "LC611", "kohya-epoch-unused", "warning"
    summary = "kohya_ss epoch with a non-zero max_train_steps: epoch is unused."
    message = "{detail}"
    reference = "legacy-dialects.md §2.4, §2.6, §5"
    note_codes = ("kohya-gui-epoch-ignored",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "kohya-gui":
            return
        e = raw_value(cfg, None, keys=("epoch",))
        s = raw_value(cfg, None, keys=("max_train_steps",))
        en = as_number(e.value) if e else None
        sn = as_number(s.value) if s else None
        if en and en > 1 and sn and sn > 0 and not as_number(cfg.get("max_train_epochs")):
            yield self.finding(cfg, origin=e.origin,
                               detail=f"epoch = {e.value} is unused: max_train_steps = {s.value} decides the length (use max_train_epochs)")


@register
class StopTextEncoderTrainingIgnored(_QuirkRule):
    """``stop_text_encoder_training`` does nothing for LoRA.

    In the kohya_ss GUI it is a DreamBooth option (percent of steps); the LoRA tab ignores it ("not yet supported",
    since 2023-01-20) (legacy-dialects.md §2.4, §2.6).

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "stop_text_encoder_training": 50}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "stop_text_encoder_training": 0}
    ```
    """

    code, name, severity = "LC612", "stop-text-encoder-training-ignored", "warning"
    summary = "stop_text_encoder_training is ignored for LoRA training."
    message = "{detail}"
    reference = "legacy-dialects.md §2.4, §2.6"
    note_codes = ("kohya-gui-stop-te-ignored",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.tab not in (None, "lora"):
            return
        r = raw_value(cfg, None, keys=("stop_text_encoder_training", "stop_text_encoder_training_pct"))
        n = as_number(r.value) if r else None
        if r and n and n > 0:
            key = r.origin.key if r.origin else "stop_text_encoder_training"
            yield self.finding(cfg, origin=r.origin, detail=f"{key} = {r.value} is ignored for LoRA training")


@register
class LoconFlagNotMigrated(_QuirkRule):
    """The early kohya_ss ``locon: true`` flag (2023-02) loads as a Standard LoRA.

    ``locon`` + ``conv_dim`` existed from 2023-02-28 to 03-02 and were replaced by ``LoRA_type: "LoCon"``; the loader
    never migrates the flag, so the conv layers are dropped (legacy-dialects.md §2.3).

    **Anti-pattern**

    ```json
    {"max_resolution": "512,512", "network_dim": 32, "locon": true, "conv_dim": 8}
    ```

    **Best practice**

    ```json
    {"max_resolution": "512,512", "network_dim": 32, "LoRA_type": "Kohya LoCon", "conv_dim": 8}
    ```
    """

    code, name, severity = "LC613", "locon-flag-not-migrated", "warning"
    summary = "Old kohya_ss locon: true is not migrated (loads as Standard LoRA)."
    message = "{detail}"
    reference = "legacy-dialects.md §2.3"
    note_codes = ("kohya-gui-locon-bool-ignored",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "kohya-gui":
            return
        r = raw_value(cfg, None, keys=("locon",))
        if r and r.value is True:
            yield self.finding(cfg, origin=r.origin,
                               detail="locon: true is never migrated by the kohya_ss loader: the file trains a Standard LoRA without conv layers")


@register
class LycorisConstrainRenamed(Rule):
    """LyCORIS ``constrain`` was renamed ``constraint``.

    kohya_ss emitted ``constrain=`` to LyCORIS until 2024-10-06 and Derrian's UI until 2024-07-26; current LyCORIS
    reads ``constraint`` (legacy-dialects.md §2.3, §4.2, §5 item 6), so the old spelling is ignored.

    **Anti-pattern**

    ```toml
    network_args = ["algo=diag-oft", "constrain=0.0001"]
    ```

    **Best practice**

    ```toml
    network_args = ["algo=diag-oft", "constraint=0.0001"]
    ```
    """

    code, name, severity = "LC614", "lycoris-constrain-renamed", "warning"
    summary = "network_args constrain= (old spelling of LyCORIS constraint=)."
    message = "network_args 'constrain={v}' is the old spelling: current LyCORIS reads 'constraint'"
    reference = "legacy-dialects.md §2.3, §4.2, §5"
    note_codes = ("derrian-toml-constrain-misspelt", "kohya-gui-constrain-spelling")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for k, v in kv_items(cfg.get("network_args")):
            if k == "constrain":
                yield self.finding(cfg, option="network_args", v=v)


@register
class XformersBooleanLegacy(Rule):
    """kohya_ss ``xformers`` is a string since 2023-08: ``"xformers"``, ``"sdpa"`` or ``"none"``.

    Older files store a boolean, which the loader maps (``true`` -> ``"xformers"``, ``false`` -> ``"none"``)
    (legacy-dialects.md §2.3, §2.4). The fix writes the string the loader would use.

    **Anti-pattern**

    ```json
    {"xformers": true}
    ```

    **Best practice**

    ```json
    {"xformers": "xformers"}
    ```
    """

    code, name, severity = "LC615", "xformers-boolean-legacy", "info"
    summary = "kohya_ss xformers as a boolean (pre-2023-08 form)."
    message = "xformers = {value!r} is the pre-2023-08 form: write {new!r}"
    reference = "legacy-dialects.md §2.3, §2.4"
    fixable = True
    note_codes = ("kohya-gui-xformers-bool",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "kohya-gui":
            return
        r = raw_value(cfg, "xformers", keys=("xformers",))
        if r is None or not isinstance(r.value, bool) or r.origin is None:
            return
        new = "xformers" if r.value else "none"
        fix = Fix(f"write xformers as {new!r}", r.origin.file, r.origin.key, value=new, line=r.origin.line)
        yield self.finding(cfg, origin=r.origin, fix=fix, value=r.value, new=new)


@register
class FalseString(Rule):
    """The *string* ``"False"`` (or ``"True"``) where a value or flag is expected.

    A non-empty string is truthy: ``"False"`` in ``huggingface_repo_id``, ``resume_from_huggingface`` or
    ``metadata_author`` (seen in kohya_ss ``TI-AdamW8bit-SDXL.json``) is passed on as a repo id / author / flag
    (legacy-dialects.md §2.4, §5 item 7).

    **Anti-pattern**

    ```json
    {"huggingface_repo_id": "False"}
    ```

    **Best practice**

    ```json
    {"huggingface_repo_id": ""}
    ```
    """

    code, name, severity = "LC616", "false-string", "warning"
    summary = "The string \"False\"/\"True\" where a value or flag is expected (truthy)."
    message = "{key} = {value!r} is a non-empty string, so it counts as set/true"
    reference = "legacy-dialects.md §2.4, §5"
    note_codes = ("kohya-gui-truthy-string",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for name, s in cfg.options.items():
            o = s.prov.origin
            raw = o.raw if o is not None and o.raw is not None else s.value
            if isinstance(raw, str) and raw in ("False", "false", "True", "true") and not isinstance(s.value, bool):
                yield self.finding(cfg, option=name, key=o.key if o else name, value=raw)
