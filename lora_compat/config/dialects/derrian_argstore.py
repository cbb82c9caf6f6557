"""Reader of Derrian's LoRA_Easy_Training_Scripts ArgStore JSON (dialect ``derrian-argstore``: A1, A2, XTI).

Reference: legacy-dialects.md §3. A1 (Jan-Feb 2023) built the command line with explicit rules (some
options always passed, others only under conditions such as "gradient_acc_steps only with
gradient_checkpointing"); A2 (Feb-May 2023) renamed keys and passed every truthy value (falsy ones dropped);
XTI files already use sd-scripts names. Keys of kohya_ss GUI files load through Derrian's alias table
(``network_dim`` -> ``net_dim`` ...; ``lr_warmup`` percent copied into ``warmup_lr_ratio`` unchanged).

Key -> option mapping: ``schemas/derrian-argstore.schema.json`` (``x-canonical``, ``x-alias-of``, ``x-eras``).
``classify(data) -> (era, tab, reasons)`` is called by ``lora_compat.config.detect``.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from lora_compat.config.dialects.coerce import (
    BOOL,
    FLOAT,
    INT,
    UNSET,
    Normalizer,
    args_table_to_list,
    canonical_kind,
    coerce,
    coerce_like_python_int,
    is_zero_like,
    show,
)
from lora_compat.config.model import CONVERTED, DEFAULT, DERIVED, FRONTEND, KEPT, RENAMED, CanonicalConfig
from lora_compat.resources import load_schema
from lora_compat.semantics.steps import derrian_a1_max_train_steps, derrian_a1_warmup_steps

DIALECT = "derrian-argstore"
SCHEMA = "derrian-argstore.schema.json"
IMAGE_EXTENSIONS = ("png", "bmp", "gif", "jpeg", "jpg", "webp")   # what Derrian's estimate counts
_BETAS_DROPPED_FOR = ("adafactor", "sgdnesterov", "sgdnesterov8bit")


@cache
def _props() -> dict[str, dict[str, Any]]:
    return load_schema(SCHEMA).get("properties", {})


def classify(data: dict[str, Any]) -> tuple[str, str | None, list[str]]:
    """Generation (A1 / A2 / XTI) of an ArgStore JSON object, with the reasons; tab is always None.

    Called by ``lora_compat.config.detect`` once it has recognised the dialect.
    """
    keys = set(data)
    if {"token_string", "init_word"} <= keys:
        return "XTI", None, ["token_string + init_word: XTI_training.py"]
    a2: list[str] = [k for k in ("optimizer_type", "lyco") if k in keys]
    if data.get("network_module") == "sd_scripts.networks.lora":
        a2.append("network_module sd_scripts.networks.lora")
    a2 += [k for k in ("optimizer_args", "network_args") if isinstance(data.get(k), dict)]
    if "resume" in keys and "load_previous_save_state" not in keys:
        a2.append("resume (not load_previous_save_state)")
    if a2:
        return "A2", None, ["A2 (ArgsList.py): " + ", ".join(a2)]
    reasons = ["A1 (lora_train_command_line/popup.py): " + ", ".join(
        [k for k in ("load_previous_save_state", "use_8bit_adam", "save_at_n_epochs") if k in keys] or ["no A2 key"])]
    return "A1", None, [*reasons, f"A1 version: {_a1_version(keys)}"]


def _a1_version(keys: set[str]) -> str:
    """Rough A1 sub-version from the key set (the file carries no date)."""
    if "use_lion" in keys or "lowram" in keys:
        return "A1.10 (2023-02-20)"
    if "multi_run_folder" in keys or "persistent_workers" in keys:
        return "A1.7-A1.9 (2023-02-04 to 02-17): epochs passed as max_train_epochs"
    if "json_load_skip_list" in keys:
        return "A1.6 (2023-02-02): epochs converted to steps"
    if "cosine_restarts" in keys:
        return "A1.5 (2023-01-29): epochs converted to steps, x2 with regularisation images"
    return "A1.0-A1.4 (2023-01-12 to 01-28): epochs converted to steps"


class _ArgStoreReader:
    def __init__(self, doc: Any, era: str):
        self.doc, self.era = doc, era
        self.cfg = CanonicalConfig(dialect=DIALECT, source=doc.path, era=era, files=[doc.path])
        self.n = Normalizer(doc, self.cfg)
        self.state: dict[str, Any] = {}     # ArgStore field -> raw value
        self.key_of: dict[str, str] = {}    # ArgStore field -> key as written (kohya alias)
        self.handled: set[str] = set()
        keys = set(doc.data)
        self.a1_epochs_to_steps = era == "A1" and not ({"multi_run_folder", "persistent_workers", "use_lion"} & keys)
        self.a1_reg_double = era == "A1" and "cosine_restarts" in keys and "json_load_skip_list" not in keys \
            and self.a1_epochs_to_steps
        self.a1_warmup_int = era == "A1" and "json_load_skip_list" in keys and "tag_occurrence_txt_file" not in keys

    # ---- helpers -----------------------------------------------------------------------------------
    def key(self, field: str) -> str:
        return self.key_of.get(field, field)

    def num(self, field: str, kind: str, default: Any = None) -> Any:
        c = coerce(self.state.get(field), kind)
        return default if not c.ok or c.value is UNSET else c.value

    def flag(self, field: str) -> bool:
        v = self.state.get(field)
        if isinstance(v, str):
            return v.strip() != ""   # Python truthiness: "none" is True (derrian-xformers-string-truthy)
        return bool(v)

    def put_field(self, name: str, field: str, *, value_kind: str | None = None, condition: bool = True,
                  why: str = "", drop_falsy: bool | None = None) -> Any:
        """Map ArgStore ``field`` to option ``name``. ``condition`` False = A1 did not pass it (noted)."""
        self.handled.add(field)
        if field not in self.state:
            return UNSET
        raw = self.state[field]
        if raw is None:
            return UNSET
        vk = value_kind or _props().get(field, {}).get("x-coerce") or canonical_kind(name)
        c = coerce_like_python_int(raw, vk)   # Derrian int() of a float truncates
        if not c.ok:
            self.n.invalid(name, self.key(field), raw, c.error or "invalid value")
            return None
        value = c.value
        if value is UNSET:
            return UNSET
        if drop_falsy is None:
            drop_falsy = self.era != "A1"
        if vk == BOOL and value is False:
            return UNSET
        if not condition:
            if not is_zero_like(value):
                self.n.note("derrian-a1-condition-dropped", f"{self.key(field)} {show(raw)} not passed: {why}",
                            self.key(field), option=name, value=value)
            return UNSET
        if drop_falsy and is_zero_like(value):
            self._falsy(name, field, value)
            return UNSET
        key = self.key(field)
        if c.changed:
            self.n.put(name, value, kind=CONVERTED, keys=key, conversion=f"{key} {show(raw)} -> {name} {show(value)}")
        elif key != name:
            self.n.put(name, value, kind=RENAMED, keys=key, conversion=f"{key} -> {name}")
        else:
            self.n.put(name, value, kind=KEPT, keys=key)
        return value

    def _falsy(self, name: str, field: str, value: Any) -> None:
        from lora_compat.config import options

        default = options.default(name)
        if default not in (None, 0, 0.0, False, "", []) and default != value:
            self.n.note("derrian-a2-falsy-dropped", f"{self.key(field)} {show(value)} dropped; sd-scripts uses "
                        f"{name} {show(default)}", self.key(field), option=name, value=value, default=default)

    # ---- loading -----------------------------------------------------------------------------------
    def load(self) -> None:
        props = _props()
        data = self.doc.data
        aliased = {props.get(k, {}).get("x-alias-of") for k in data} - {None}
        for k, v in data.items():
            if k in aliased and k in self.handled:
                continue
            p = props.get(k, {})
            alias = p.get("x-alias-of")
            if alias and self.era != "XTI" and self.era not in p.get("x-native-eras", ()):
                # the loader copies aliased keys over the ArgStore name before loading (the alias wins)
                if alias in data:
                    self.n.frontend_only(alias, data[alias], f"overwritten by the kohya key {k} (alias table)")
                    self.handled.add(alias)
                self.state[alias] = v
                self.key_of[alias] = k
                self.n.note("derrian-kohya-alias", f"kohya key {k} loaded as {alias}", k, alias=alias)
                if k == "lr_warmup":
                    self.n.note("derrian-kohya-warmup-percent",
                                f"lr_warmup {show(v)} (percent) copied into warmup_lr_ratio as a ratio", k)
                self.handled.add(k)
                continue
            self.state[k] = v
        if "8bit_adam" in data:
            self.n.note("derrian-key-ignored", "8bit_adam (popup typo) is not an ArgStore field", "8bit_adam")
        if self.era == "A2" and "load_previous_save_state" in data:
            self.n.note("derrian-key-ignored", "load_previous_save_state (A1) is not read by A2",
                        "load_previous_save_state")
            self.n.frontend_only("load_previous_save_state", data["load_previous_save_state"],
                                 "A1 key; A2 reads 'resume'")
            self.handled.add("load_previous_save_state")
            self.state.pop("load_previous_save_state", None)

    def run(self) -> CanonicalConfig:
        self.load()
        if self.era == "XTI":
            self.xti()
        else:
            self.argstore()
        self.generic()
        from lora_compat.config.kohya_folder import apply_kohya_folder

        apply_kohya_folder(self.cfg)
        return self.cfg

    # ---- A1 / A2 -----------------------------------------------------------------------------------
    def argstore(self) -> None:
        a1 = self.era == "A1"
        always_falsy = False if a1 else None  # A1 passed these even when falsy
        for name, field in (("pretrained_model_name_or_path", "base_model"), ("train_data_dir", "img_folder"),
                            ("output_dir", "output_folder"), ("caption_extension", "caption_extension"),
                            ("train_batch_size", "batch_size"), ("mixed_precision", "mixed_precision"),
                            ("save_precision", "save_precision"), ("network_dim", "net_dim"),
                            ("save_model_as", "save_as"), ("lr_scheduler", "scheduler")):
            self.put_field(name, field, drop_falsy=always_falsy)
        for name, field in (("prior_loss_weight", "prior_loss_weight"), ("clip_skip", "clip_skip"),
                            ("seed", "test_seed"), ("max_token_length", "max_clip_token_length"),
                            ("network_alpha", "alpha")):
            self.put_field(name, field, drop_falsy=always_falsy)
        # num_workers: A1.4-A1.6 passed it only when non-zero, A1.7 (persistent_workers) on always
        self.put_field("max_data_loader_n_workers", "num_workers",
                       drop_falsy=not a1 or "persistent_workers" not in self.doc.data)
        # resolution: train_resolution [+ height_resolution]
        self.handled.update(("train_resolution", "height_resolution"))
        if self.state.get("train_resolution") is not None:
            raw = self.state["train_resolution"]
            h = self.num("height_resolution", INT)
            text = str(raw).strip()
            if isinstance(raw, str) and "," in raw:
                text = raw.replace(" ", "")
            elif coerce(raw, INT).ok and coerce(raw, INT).value is not UNSET:
                w = coerce(raw, INT).value
                text = f"{w},{h}" if (h and not a1) else str(w)
            else:
                self.n.invalid("resolution", self.key("train_resolution"), raw, "expected an integer resolution")
                text = ""
            if text:
                keys = [self.key("train_resolution")] + (["height_resolution"] if h and not a1 else [])
                self.n.put("resolution", text, kind=CONVERTED, keys=keys,
                           conversion=f"train_resolution {show(raw)}"
                           + (f" + height_resolution {h}" if h and not a1 else "") + f" -> resolution {show(text)}")
        # module
        self.network(a1)
        self.optimizer(a1)
        self.learning_rates(a1)
        self.length(a1)
        self.flags(a1)

    def network(self, a1: bool) -> None:
        self.handled.update(("network_module", "lyco", "locon", "locon_dim", "locon_alpha", "network_args"))
        if "network_module" in self.doc.data:
            self.n.frontend_only("network_module", self.doc.data["network_module"], "A2 recomputes network_module")
            self.n.note("derrian-a2-network-module-ignored", "stored network_module is ignored", "network_module")
        args_obj = self.state.get("network_args")
        args: list[str] = []
        if isinstance(args_obj, dict):
            args = args_table_to_list(args_obj)
        elif args_obj not in (None, "", {}):
            self.n.invalid("network_args", "network_args", args_obj, "expected an object {name: value}")
        module, why, keys = "networks.lora", "A1 always passes networks.lora" if a1 else "default", []
        if not a1:
            module = "sd_scripts.networks.lora"
            if self.flag("lyco"):
                module, why, keys = "lycoris.kohya", "lyco true", ["lyco"]
            elif isinstance(args_obj, dict) and "unit" in args_obj:
                module, why, keys = "sd_scripts.networks.dylora", "network_args has unit", ["network_args"]
            elif self.flag("locon"):
                if "network_args" in self.doc.data:   # A2.3+: locon deprecated, dims copied into network_args
                    why = "locon ignored (A2.3+); locon_dim/locon_alpha copied into network_args"
                else:
                    module, why, keys = "locon.locon.locon_kohya", "locon true (A2.1-A2.2)", ["locon"]
                dim = self.num("locon_dim", INT) or 4
                alpha = self.num("locon_alpha", FLOAT) or dim
                if not any(a.startswith("conv_dim=") for a in args):
                    args += [f"conv_dim={dim}", f"conv_alpha={_fmt(alpha)}"]
            # Derrian's vendored sd_scripts package == sd-scripts' networks package
            module = module.replace("sd_scripts.", "")
        self.n.put("network_module", module, kind=DERIVED if keys else DEFAULT, keys=keys or None,
                   conversion=f"network_module {show(module)} ({why})")
        if args:
            self.n.put("network_args", args, kind=CONVERTED, keys=["network_args"] if "network_args" in self.doc.data
                       else [k for k in ("locon_dim", "locon_alpha") if k in self.doc.data] or None,
                       conversion=f"network_args object -> {show(args)}")

    def optimizer(self, a1: bool) -> None:
        self.handled.update(("optimizer_type", "optimizer_args", "use_8bit_adam", "use_lion", "lr_scheduler_type",
                             "lr_scheduler_args"))
        eight, lion = self.flag("use_8bit_adam"), self.flag("use_lion")
        if a1:
            if eight:
                self.n.put("use_8bit_adam", True, kind=KEPT, keys="use_8bit_adam")
                if lion:
                    self.n.note("derrian-a1-lion-ignored", "use_lion is ignored with use_8bit_adam", "use_lion")
            elif lion:
                self.n.put("use_lion_optimizer", True, kind=RENAMED, keys="use_lion",
                           conversion="use_lion -> use_lion_optimizer")
            return
        opt = self.state.get("optimizer_type")
        if eight or lion:
            flag_name, key = ("use_8bit_adam", "use_8bit_adam") if eight else ("use_lion_optimizer", "use_lion")
            self.n.put(flag_name, True, kind=KEPT if key == flag_name else RENAMED, keys=key)
            if lion and eight:
                self.n.put("use_lion_optimizer", True, kind=RENAMED, keys="use_lion")
            self.n.note("derrian-optimizer-flag", f"{key} selects the optimizer; optimizer_type {show(opt)} blanked",
                        key, optimizer_type=opt)
        else:
            self.put_field("optimizer_type", "optimizer_type")
        oargs = self.state.get("optimizer_args")
        if isinstance(oargs, dict):
            table = dict(oargs)
            lo = str(opt or "").lower()
            if "betas" in table and lo in _BETAS_DROPPED_FOR:
                table.pop("betas")
                self.n.note("derrian-a2-betas-dropped", f"betas dropped for {opt}", "optimizer_args", optimizer=opt)
            lst = args_table_to_list(table)
            if lo.startswith("dadaptation") and not any(x.startswith("decouple=") for x in lst):
                lst.append("decouple=True")
                self.n.note("derrian-a2-decouple-added", "decouple=True appended for DAdaptation", "optimizer_args")
            if lst:
                self.n.put("optimizer_args", lst, kind=CONVERTED, keys="optimizer_args",
                           conversion=f"optimizer_args object -> {show(lst)}")
        self.put_field("lr_scheduler_type", "lr_scheduler_type")
        sargs = self.state.get("lr_scheduler_args")
        if isinstance(sargs, dict) and sargs:
            lst = args_table_to_list(sargs)
            self.n.put("lr_scheduler_args", lst, kind=CONVERTED, keys="lr_scheduler_args",
                       conversion=f"lr_scheduler_args object -> {show(lst)}")

    def learning_rates(self, a1: bool) -> None:
        for name in ("learning_rate", "text_encoder_lr", "unet_lr"):
            v = self.num(name, FLOAT)
            self.put_field(name, name, condition=not a1 or (v is not None and v > 0), why="A1 passes LRs only if > 0")
        self.handled.update(("unet_only", "text_only"))
        unet, text = self.flag("unet_only"), self.flag("text_only")
        if unet:
            self.n.put("network_train_unet_only", True, kind=RENAMED, keys="unet_only",
                       conversion="unet_only -> network_train_unet_only")
        if text and not (a1 and unet):
            self.n.put("network_train_text_encoder_only", True, kind=RENAMED, keys="text_only",
                       conversion="text_only -> network_train_text_encoder_only")
        if unet and text:
            if a1:
                self.n.note("derrian-a1-unet-wins", "unet_only and text_only: A1 passes only unet_only", "text_only")
            else:
                self.n.note("derrian-a2-both-train-parts", "A2 passes both unet_only and text_only", "text_only")

    def length(self, a1: bool) -> None:
        self.handled.update(("num_epochs", "max_steps", "warmup_lr_ratio", "save_every_n_epochs", "save_at_n_epochs",
                             "cosine_restarts", "scheduler_power"))
        epochs = self.num("num_epochs", INT)
        max_steps = self.num("max_steps", INT)
        batch = self.num("batch_size", INT) or 1
        steps: int | None = max_steps if max_steps else None
        estimate = None
        # the versions that converted epochs to steps divided with // (unless cosine_restarts was set)
        floor = bool(self.a1_epochs_to_steps) and "cosine_restarts" not in self.doc.data
        if not max_steps:
            images = _count_images(self.state.get("img_folder"), self.doc.path)
            if images is not None:
                reg = _count_images(self.state.get("reg_img_folder"), self.doc.path) if self.a1_reg_double else 0
                estimate = derrian_a1_max_train_steps(images, batch, epochs or 1, floor_per_epoch=floor,
                                                      reg_samples=reg or 0)
        if max_steps:
            self.put_field("max_train_steps", "max_steps", drop_falsy=False)
        elif a1 and self.a1_epochs_to_steps:
            if estimate is not None:
                self.n.put("max_train_steps", estimate, kind=DERIVED, keys=[self.key("num_epochs")],
                           conversion=f"num_epochs {epochs} x images x repeats / batch {batch} -> max_train_steps "
                                      f"{estimate}")
                steps = estimate
            self.n.note("derrian-a1-epochs-to-steps", "A1 before 2023-02-04 converted num_epochs to max_train_steps"
                        + ("" if estimate is not None else " (image folder absent: steps unknown)"),
                        self.key("num_epochs") if "num_epochs" in self.state else None, epochs=epochs,
                        train_batch_size=batch, max_train_steps=estimate, floor_per_epoch=floor,
                        reg_double=self.a1_reg_double)
        else:
            self.put_field("max_train_epochs", "num_epochs")
            steps = estimate
        # warmup ratio -> steps
        ratio = self.num("warmup_lr_ratio", FLOAT)
        if ratio:
            if self.a1_warmup_int and ratio != int(ratio):
                self.n.note("derrian-a1-warmup-ratio-truncated",
                            f"warmup_lr_ratio {ratio} -> {int(ratio)} (loader bug)",
                            self.key("warmup_lr_ratio"), ratio=ratio)
                ratio = float(int(ratio))
            if ratio and steps is not None:
                ws = derrian_a1_warmup_steps(steps, ratio)
                if ws:
                    self.n.put("lr_warmup_steps", ws, kind=DERIVED, keys=[self.key("warmup_lr_ratio")],
                               conversion=f"warmup_lr_ratio {show(self.state['warmup_lr_ratio'])} x {steps} steps -> "
                                          f"lr_warmup_steps {ws}")
                self.n.note("derrian-warmup-ratio", f"ratio {ratio} x {steps} steps = {ws}",
                            self.key("warmup_lr_ratio"),
                            ratio=ratio, steps=steps, warmup=ws)
            elif ratio:
                self.n.note("derrian-warmup-unresolved", f"warmup_lr_ratio {ratio} of an unknown step estimate",
                            self.key("warmup_lr_ratio"), ratio=ratio, epochs=epochs, train_batch_size=batch,
                            floor_per_epoch=floor, reg_double=self.a1_reg_double)
        # save every n epochs (renamed 2023-02-09)
        field = "save_every_n_epochs" if "save_every_n_epochs" in self.state else "save_at_n_epochs"
        if a1 and self.state.get(field) is None:
            self.n.put("save_every_n_epochs", 999999, kind=FRONTEND,
                       keys=[field] if field in self.doc.data else None,
                       conversion=f"{field} null -> save_every_n_epochs 999999 (A1: no intermediate saves)")
            self.n.note("derrian-a1-save-every-default", "null save_every_n_epochs passed as 999999",
                        field if field in self.doc.data else None)
        else:
            self.put_field("save_every_n_epochs", field)
        sched = str(self.state.get("scheduler") or "")
        self.put_field("lr_scheduler_num_cycles", "cosine_restarts",
                       condition=not a1 or sched == "cosine_with_restarts",
                       why="A1 passes it only with cosine_with_restarts")
        self.put_field("lr_scheduler_power", "scheduler_power", condition=not a1 or sched == "polynomial",
                       why="A1 passes it only with polynomial")

    def flags(self, a1: bool) -> None:
        self.handled.update(("gradient_acc_steps", "random_crop", "color_aug", "v_parameterization", "keep_tokens",
                             "xformers", "buckets", "min_bucket_resolution", "max_bucket_resolution"))
        ckpt = self.flag("gradient_checkpointing")
        if a1 and not ckpt and (self.num("gradient_acc_steps", INT) or 0) > 1:
            self.n.note("derrian-a1-drops-gradient-acc",
                        f"gradient_acc_steps {self.state.get('gradient_acc_steps')} dropped "
                        "(no gradient_checkpointing)",
                        self.key("gradient_acc_steps"), value=self.state.get("gradient_acc_steps"))
        elif not a1 or ckpt:
            self.put_field("gradient_accumulation_steps", "gradient_acc_steps")
        cache = self.flag("cache_latents")
        if self.flag("random_crop"):
            if a1 and cache:
                self.n.note("derrian-a1-random-crop-dropped", "random_crop dropped because cache_latents is on",
                            "random_crop")
            else:
                self.put_field("random_crop", "random_crop")
                if cache:
                    self.n.note("derrian-a2-random-crop-with-cache",
                                "random_crop with cache_latents: sd-scripts refuses",
                                "random_crop")
        if self.flag("color_aug"):
            self.put_field("color_aug", "color_aug")
            if a1 and cache:
                self.n.note("derrian-a1-color-aug-aborts", "color_aug with cache_latents: A1 aborts", "color_aug")
        self.put_field("v_parameterization", "v_parameterization", condition=not a1 or self.flag("v2"),
                       why="A1 passes v_parameterization only with v2")
        kt = self.num("keep_tokens", INT)
        self.put_field("keep_tokens", "keep_tokens", condition=not a1 or (kt or 0) > 0, why="A1 passes it only if > 0")
        xf = self.state.get("xformers")
        if isinstance(xf, str) and xf.strip():
            self.n.put("xformers", True, kind=FRONTEND, keys=self.key("xformers"),
                       conversion=f"xformers {show(xf)} (truthy string) -> xformers true")
            if xf.strip().lower() in ("none", "false", "sdpa"):
                self.n.note("derrian-xformers-string-truthy", f"xformers {show(xf)} is truthy: --xformers passed",
                            self.key("xformers"), value=xf)
        else:
            self.put_field("xformers", "xformers")
        buckets = self.flag("buckets") if "buckets" in self.state else False
        if buckets:
            self.put_field("enable_bucket", "buckets")
        if buckets or not a1:
            self.put_field("min_bucket_reso", "min_bucket_resolution")
            self.put_field("max_bucket_reso", "max_bucket_resolution")

    # ---- XTI -----------------------------------------------------------------------------------------
    def xti(self) -> None:
        self.n.note("derrian-xti-not-lora", "XTI_training.py trains Extended Textual Inversion, not a LoRA", None)

    # ---- the rest: schema-driven ----------------------------------------------------------------------
    def generic(self) -> None:
        props = _props()
        from lora_compat.config import options

        for field in list(self.state):
            if field in self.handled:
                continue
            self.handled.add(field)
            raw = self.state[field]
            key = self.key(field)
            p = props.get(field)
            if p is None:
                if self.era == "XTI" and options.is_option(field):
                    self.put_field(field, field, drop_falsy=True)
                    continue
                self.n.unknown(key, raw, "not an ArgStore field (Derrian's loader ignores it)")
                self.n.note("derrian-key-ignored", f"{key} is not an ArgStore field", key)
                continue
            canon = p.get("x-canonical")
            if not canon:
                self.n.frontend_only(key, raw, p.get("x-frontend-only") or "workflow key")
                continue
            if self.era not in p.get("x-eras", ("A1", "A2")) and self.era != "XTI":
                self.n.unknown(key, raw, f"not an ArgStore field of generation {self.era}")
                continue
            self.put_field(canon, field, drop_falsy=True if self.era == "XTI" else None)


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _count_images(folder: Any, config_path: str) -> int | None:
    """Σ repeats x images of ``<int>_...`` sub-folders the way Derrian's scripts counted; None when absent."""
    if not isinstance(folder, str) or not folder:
        return None
    path = folder if os.path.isabs(folder) else os.path.join(os.path.dirname(os.path.abspath(config_path)), folder)
    if not os.path.isdir(path):
        return None
    total = 0
    for entry in sorted(os.listdir(path)):
        sub = os.path.join(path, entry)
        if not os.path.isdir(sub) or "_" not in entry:
            continue
        try:
            repeats = int(entry.split("_")[0])
        except ValueError:
            continue
        total += repeats * sum(1 for f in os.listdir(sub) if f.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS)
    return total


def read(doc: Any, detection: Any = None) -> CanonicalConfig:
    """Normalize a Derrian ArgStore JSON document into the canonical model."""
    from lora_compat.errors import UserError

    if not isinstance(doc.data, dict):
        raise UserError("a Derrian ArgStore config must be a JSON object", file=doc.path)
    era = getattr(detection, "era", None)
    if era not in ("A1", "A2", "XTI"):
        era = classify(doc.data)[0]
    return _ArgStoreReader(doc, era).run()
