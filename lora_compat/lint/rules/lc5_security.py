"""LC5xx — security and privacy: credentials in configs, and values that would make sd-scripts import code.

lora-compat itself never imports anything named in a config: these rules only read strings.
"""

from __future__ import annotations

from typing import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.config.secrets import is_secret_key
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register

# Network modules sd-scripts (and LyCORIS) ship for SD/SDXL LoRA training (reference §6.9; legacy-dialects §2.5).
KNOWN_NETWORK_MODULES = frozenset({
    "networks.lora", "networks.lora_fa", "networks.dylora", "networks.oft", "networks.loha", "networks.lokr",
    "networks.lora_sd3", "networks.lora_flux", "networks.oft_flux", "lycoris.kohya", "locon.locon_kohya",
})
# Derrian's bundled classes (legacy-dialects.md §4.2): not in sd-scripts; migrate maps them.
DERRIAN_PREFIX = "LoraEasyCustomOptimizer."


@register
class CredentialInConfig(Rule):
    """A credential (API key, token, password) is stored in the config.

    Configs get shared, committed and posted in issues; ``wandb_api_key`` and ``huggingface_token`` are written
    by the kohya_ss GUI and Derrian's UI into the file (legacy-dialects.md §2.4, §3.3). lora-compat never prints
    the value (every output format redacts it), and ``lint --fix`` always blanks it in the fixed copy. Put the
    credential in the environment instead (``WANDB_API_KEY``, ``HF_TOKEN``) — both libraries read it from there.

    **Anti-pattern**

    ```json
    {"wandb_api_key": "0123456789abcdef..."}
    ```

    **Best practice**

    ```json
    {"wandb_api_key": ""}
    ```
    """

    code, name, severity = "LC501", "credential-in-config", "error"
    summary = "A credential (wandb_api_key, huggingface_token, ...) is stored in the config."
    message = "{key} holds a credential (value redacted): remove it and use an environment variable"
    reference = "legacy-dialects.md §2.4, §3.3; sd-scripts-reference.md §0 step 3"
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        seen: set[tuple[str, int | None]] = set()
        places = []
        # credentials are non-empty strings (``num_vectors_per_token = 8`` matches the name pattern, not this)
        for name, s in cfg.options.items():
            if _is_credential_option(name) and isinstance(s.value, str) and s.value:
                places.append((s.prov.origin, name))
        for k in list(cfg.unknown_keys) + list(cfg.frontend_only):
            if is_secret_key(k.key) and isinstance(k.value, str) and k.value:
                places.append((k.origin, k.key))
        for inv in cfg.invalid:
            if is_secret_key(inv.origin.key) and isinstance(inv.value, str) and inv.value:
                places.append((inv.origin, inv.option))
        for origin, name in places:
            key = origin.key if origin else name
            if (key, origin.line if origin else None) in seen:
                continue
            seen.add((key, origin.line if origin else None))
            fix = None
            if origin is not None:
                fix = Fix(f"blank the credential {key}", origin.file, origin.key, value="", line=origin.line)
            yield self.finding(cfg, origin=origin, option=name, fix=fix, key=key)


def _is_credential_option(name: str) -> bool:
    """A canonical option holding a credential: the schema's ``x-secret`` decides when it knows the option.

    (``is_secret_key`` alone also matches e.g. ``num_vectors_per_token``, which is a count.)
    """
    try:
        from lora_compat.config.options import spec

        s = spec(name)
    except (OSError, ValueError):
        s = None
    if s is not None:
        return bool(s.get("x-secret"))
    return is_secret_key(name)


def _dotted(v: object) -> bool:
    return isinstance(v, str) and "." in v.strip(".")


@register
class NetworkModuleNotAllowlisted(Rule):
    """``network_module`` names a module outside the known LoRA networks.

    sd-scripts imports ``network_module`` with ``importlib`` (sd-scripts-reference.md §0 step 5.17, §1.7): a config
    can make the trainer run arbitrary code. lora-compat maps the known names (networks.lora, lora_fa, dylora,
    oft, loha, lokr, lycoris.kohya …) onto its own implementations and refuses everything else; it never imports
    a name from a config.

    **Anti-pattern**

    ```toml
    network_module = "my_tools.evil_lora"
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora"
    ```
    """

    code, name, severity = "LC502", "network-module-not-allowlisted", "error"
    summary = "network_module outside the known networks: sd-scripts would import it."
    message = "network_module {value!r} is not a known LoRA network: sd-scripts would import and run it; lora-compat refuses"
    reference = "sd-scripts-reference.md §0, §1.7, §6.9"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("network_module")
        if not isinstance(v, str) or not v:
            return
        name = v[len("sd_scripts."):] if v.startswith("sd_scripts.") else v
        if name not in KNOWN_NETWORK_MODULES:
            yield self.finding(cfg, option="network_module", value=v)


@register
class OptimizerTypeImportsCode(Rule):
    """A dotted ``optimizer_type`` makes sd-scripts import a module.

    Names that are not built in go to ``torch.optim.<Name>`` or, when dotted, to an arbitrary ``module.Class``
    (sd-scripts-reference.md §1.5, §4.10). lora-compat never imports from a config: map the optimizer to a
    built-in name (``AdamW``, ``AdamW8bit``, ``Lion``, ``Prodigy``, ``Adafactor`` …). Derrian's bundled
    ``LoraEasyCustomOptimizer.*`` classes do not exist in sd-scripts at all.

    **Anti-pattern**

    ```toml
    optimizer_type = "my_pkg.optim.Magic"
    ```

    **Best practice**

    ```toml
    optimizer_type = "AdamW8bit"
    ```
    """

    code, name, severity = "LC503", "optimizer-type-imports-code", "error"
    summary = "Dotted optimizer_type: sd-scripts would import that module."
    message = "optimizer_type {value!r} is a dotted path that sd-scripts would import{extra}; use a built-in optimizer name"
    reference = "sd-scripts-reference.md §1.5, §4.10"
    note_codes = ("derrian-toml-custom-optimizer",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("optimizer_type")
        if _dotted(v):
            extra = " (a Derrian class that vanilla sd-scripts lacks)" if v.startswith(DERRIAN_PREFIX) else ""
            yield self.finding(cfg, option="optimizer_type", value=v, extra=extra)


@register
class LrSchedulerTypeImportsCode(Rule):
    """A dotted ``lr_scheduler_type`` makes sd-scripts import a module.

    ``lr_scheduler_type`` is a ``torch.optim.lr_scheduler`` class name or a dotted path that sd-scripts imports and
    builds from ``lr_scheduler_args`` (sd-scripts-reference.md §1.5, §4.11). Derrian's UI writes
    ``LoraEasyCustomOptimizer.CosineAnnealingWarmRestarts.CosineAnnealingWarmRestarts`` and friends, classes that
    exist only in Derrian's package (legacy-dialects.md §4.2, §4.4); map them to ``cosine_with_restarts`` +
    ``lr_scheduler_num_cycles``.

    **Anti-pattern**

    ```toml
    lr_scheduler_type = "LoraEasyCustomOptimizer.CosineAnnealingWarmRestarts.CosineAnnealingWarmRestarts"
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine_with_restarts"
    lr_scheduler_num_cycles = 4
    ```
    """

    code, name, severity = "LC504", "lr-scheduler-type-imports-code", "error"
    summary = "Dotted lr_scheduler_type: sd-scripts would import that module."
    message = "lr_scheduler_type {value!r} is a dotted path that sd-scripts would import{extra}"
    reference = "sd-scripts-reference.md §1.5, §4.11; legacy-dialects.md §4.2, §4.4"
    note_codes = ("derrian-toml-custom-scheduler",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("lr_scheduler_type")
        if _dotted(v):
            extra = (" (a Derrian class that vanilla sd-scripts lacks; map it to cosine_with_restarts)"
                     if v.startswith(DERRIAN_PREFIX) else "")
            yield self.finding(cfg, option="lr_scheduler_type", value=v, extra=extra)


@register
class DatasetClassImportsCode(Rule):
    """``dataset_class`` makes sd-scripts import an arbitrary ``package.module.Class``.

    It bypasses the dataset config entirely (sd-scripts-reference.md §1.3). lora-compat refuses to import code
    named in a config; describe the data with a dataset config instead.

    **Anti-pattern**

    ```toml
    dataset_class = "mydata.loader.MyDataset"
    ```

    **Best practice**

    ```toml
    dataset_config = "dataset.toml"
    ```
    """

    code, name, severity = "LC505", "dataset-class-imports-code", "error"
    summary = "dataset_class: sd-scripts would import that class."
    message = "dataset_class {value!r} would make sd-scripts import code; lora-compat refuses"
    reference = "sd-scripts-reference.md §1.3"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("dataset_class")
        if isinstance(v, str) and v:
            yield self.finding(cfg, option="dataset_class", value=v)


@register
class PickleOutputFormat(Rule):
    """``save_model_as`` ckpt/pt writes a pickle: loading it can run code, and it has no metadata.

    ckpt and pt are written with ``torch.save`` and carry no ``ss_*`` metadata (sd-scripts-reference.md §1.7,
    §6.5). Anyone loading a pickle runs whatever it contains; safetensors is data only. The fix switches to
    safetensors.

    **Anti-pattern**

    ```toml
    save_model_as = "ckpt"
    ```

    **Best practice**

    ```toml
    save_model_as = "safetensors"
    ```
    """

    code, name, severity = "LC506", "pickle-output-format", "warning"
    summary = "save_model_as ckpt/pt: pickle output (code on load, no metadata)."
    message = "save_model_as = {value!r} writes a pickle (runs code when loaded, no metadata): use safetensors"
    reference = "sd-scripts-reference.md §1.7, §6.5"
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("save_model_as")
        if v in ("ckpt", "pt"):
            o = cfg.locate("save_model_as")
            fix = Fix("save as safetensors", o.file, o.key, value="safetensors", line=o.line) if o else None
            yield self.finding(cfg, option="save_model_as", fix=fix, value=v)


@register
class PickleInputWeights(Rule):
    """A weights file to load is a pickle (``.ckpt``/``.pt``/``.pth``/``.bin``).

    Loading a pickle executes code embedded in it. Prefer ``.safetensors`` for ``network_weights``,
    ``base_weights``, ``vae`` and the base model (sd-scripts-reference.md §1.2, §1.7).

    **Anti-pattern**

    ```toml
    network_weights = "downloaded_lora.pt"
    ```

    **Best practice**

    ```toml
    network_weights = "downloaded_lora.safetensors"
    ```
    """

    code, name, severity = "LC507", "pickle-input-weights", "info"
    summary = "A weights input is a pickle file (.ckpt/.pt/.pth/.bin)."
    message = "{opt} {path!r} is a pickle file: loading it can run code; prefer .safetensors"
    reference = "sd-scripts-reference.md §1.2, §1.7"

    OPTIONS = ("pretrained_model_name_or_path", "vae", "network_weights", "base_weights")
    EXTS = (".ckpt", ".pt", ".pth", ".bin")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for opt in self.OPTIONS:
            v = cfg.get(opt)
            paths = v if isinstance(v, (list, tuple)) else [v]
            for p in paths:
                if isinstance(p, str) and p.lower().endswith(self.EXTS):
                    yield self.finding(cfg, option=opt, opt=opt, path=p)


@register
class TrackerLogsConfig(Rule):
    """``log_config`` uploads your training arguments to the tracker.

    With ``log_with = "wandb"`` (or ``all``) and ``log_config``, sd-scripts logs a filtered copy of the arguments
    to the tracker (sd-scripts-reference.md §1.4) — paths, prompts and comments become visible to whoever can see
    the run. Review what the config contains before sharing runs publicly.

    **Anti-pattern**

    ```toml
    log_with = "wandb"
    log_config = true
    ```

    **Best practice**

    ```toml
    log_with = "wandb"
    log_config = false
    ```
    """

    code, name, severity = "LC508", "tracker-logs-config", "info"
    summary = "log_config with wandb: training arguments are uploaded to the tracker."
    message = "log_config with log_with {v!r} uploads the training arguments (paths, prompts) to the tracker"
    reference = "sd-scripts-reference.md §1.4"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("log_with")
        if truthy(cfg.get("log_config")) and v in ("wandb", "all"):
            yield self.finding(cfg, option="log_config", v=v)
