"""lora-compat's native TOML config: the layout (read from ``schemas/native.schema.json``) and its reader.

The native file is sectioned (``[model]``, ``[network]``, ``[optimizer]``, ``[scheduler]`` ...). Each field is
linked to its canonical option by ``x-canonical`` in the schema; most fields carry the canonical name, a few
are renamed or restructured:

* ``[model] arch`` <-> pseudo-option ``sdxl`` and ``v2``;
* ``[network]`` uses PEFT names: ``r`` (network_dim), ``lora_alpha`` (network_alpha), ``kind`` + ``module``
  (network_module), ``conv_r`` / ``conv_alpha`` / ``rank_dropout`` / ``module_dropout`` / ``args``
  (network_args), and PEFT-only fields stored as canonical options ``peft.<field>``;
* ``[scheduler] warmup_steps`` / ``warmup_ratio`` (lr_warmup_steps int / float), same for decay;
* ``[optimizer] args`` / ``[scheduler] args`` tables (optimizer_args / lr_scheduler_args ``k=v`` lists);
* ``[general]``, ``[[datasets]]``, ``[[datasets.subsets]]`` exactly as sd-scripts' dataset config.

The writer is :mod:`lora_compat.migrate.native`; native -> canonical -> native is identical.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from lora_compat.config.document import Document, join_key
from lora_compat.config.model import (
    DERIVED,
    KEPT,
    RENAMED,
    CanonicalConfig,
    Dataset,
    InvalidValue,
    Note,
    Origin,
    Provenance,
    Setting,
    Subset,
    UnknownKey,
)
from lora_compat.errors import UserError

if TYPE_CHECKING:
    from lora_compat.config.detection import Detection

NATIVE_SCHEMA = "native.schema.json"
FORMAT = "lora-compat/1"
PEFT_PREFIX = "peft."          # canonical names of PEFT-only fields: "peft.use_rslora" ...

# kind -> (network_module, algo in network_args or None) implied when [network] has no `module`
KIND_MODULE: dict[str, tuple[str, str | None]] = {
    "lora": ("networks.lora", None),
    "locon": ("networks.lora", None),
    "loha": ("lycoris.kohya", "loha"),
    "lokr": ("lycoris.kohya", "lokr"),
}
# [network] fields that hold one network_args key, in the order the reader writes them to network_args
NETWORK_ARG_FIELDS: dict[str, str] = {
    "conv_r": "conv_dim", "conv_alpha": "conv_alpha", "rank_dropout": "rank_dropout",
    "module_dropout": "module_dropout",
}
# Codes of the notes the native reader emits (lint turns them into findings).
NATIVE_NOTE_CODES: dict[str, str] = {
    "native-loftq-needs-init":
        "loftq_config is set but init_lora_weights is not \"loftq\": PEFT ignores the LoftQ config.",
    "native-loftq-quantized-base":
        "LoftQ quantizes the backbone itself and needs an unquantized base model; fp8_base / fp8_base_unet "
        "is set.",
    "native-rslora-scale":
        "use_rslora scales the update by lora_alpha/sqrt(r), not lora_alpha/r as sd-scripts does: the same "
        "alpha gives a stronger LoRA than in kohya tools.",
    "native-dora-not-kohya":
        "use_dora trains DoRA, which sd-scripts' networks.lora cannot train and kohya-format consumers may "
        "not load.",
    "native-lora-dropout-not-kohya":
        "lora_dropout is PEFT's input dropout; kohya's network_dropout acts on the rank activations. Both set: "
        "two different dropouts are applied.",
    "native-init-not-kohya":
        "init_lora_weights is not true: the adapter does not start as sd-scripts' does (A kaiming-uniform, "
        "B zeros).",
    "native-pattern-no-kohya":
        "target_modules / rank_pattern / alpha_pattern have no sd-scripts equivalent; migrating to sd-scripts "
        "or the kohya_ss GUI loses them.",
}

# -------------------------------------------------------------------------------------------------------
# layout (from the schema: one source)

@cache
def layout() -> dict[str, dict[str, Any]]:
    """``{section: {field: x-canonical}}`` for every section field of the native schema."""
    from lora_compat.resources import load_schema

    props = load_schema(NATIVE_SCHEMA)["properties"]
    out: dict[str, dict[str, Any]] = {}
    for sec, spec in props.items():
        if spec.get("type") == "object" and "properties" in spec:
            out[sec] = {f: fs.get("x-canonical") for f, fs in spec["properties"].items()}
    return out


@cache
def field_of_option() -> dict[str, tuple[str, str]]:
    """Canonical option -> (section, field) for the plainly mapped fields (x-canonical one option name)."""
    out: dict[str, tuple[str, str]] = {}
    for sec, fields in layout().items():
        for f, canon in fields.items():
            if not isinstance(canon, str):
                continue
            plain = "." not in canon and canon not in out and f not in _SPECIAL_FIELDS
            if plain or canon.startswith(PEFT_PREFIX):
                out[canon] = (sec, f)
    return out


# fields handled by dedicated code (not a plain 1:1 copy)
_SPECIAL_FIELDS = {"arch", "kind", "module", "args", "warmup_steps", "warmup_ratio", "decay_steps",
                   "decay_ratio", *NETWORK_ARG_FIELDS}


@cache
def option_validator(name: str) -> Any:
    """A jsonschema validator of one canonical option's value (from sd-scripts.schema.json)."""
    import jsonschema

    from lora_compat.config import options

    spec = dict(options.spec(name) or {})
    spec = {k: v for k, v in spec.items() if not k.startswith("x-") and k not in ("default", "description")}
    return jsonschema.Draft202012Validator(spec)


@cache
def native_field_validator(section: str, fld: str) -> Any:
    import jsonschema

    from lora_compat.resources import load_schema

    spec = dict(load_schema(NATIVE_SCHEMA)["properties"][section]["properties"][fld])
    spec = {k: v for k, v in spec.items() if not k.startswith("x-") and k != "description"}
    return jsonschema.Draft202012Validator(spec)


def _type_error(validator: Any, value: Any) -> str | None:
    err = next(iter(validator.iter_errors(value)), None)
    return None if err is None else err.message


def is_native(data: Any) -> bool:
    """True for a parsed document that declares ``format = "lora-compat/..."`` (detection helper)."""
    return isinstance(data, dict) and isinstance(data.get("format"), str) and \
        data["format"].startswith("lora-compat/")


def looks_native(data: Any) -> bool:
    """Detection hook called by :mod:`lora_compat.config.detect`."""
    return is_native(data)


def args_string(value: Any) -> str:
    """A typed native value as the string sd-scripts receives in ``network_args``."""
    if isinstance(value, bool):
        return str(value)
    return str(value)


# -------------------------------------------------------------------------------------------------------
# network_args (values stay strings in sd-scripts; each network module converts them, reference §6.8).
# Shared by the reader, the writers and the plan.

def parse_network_args(value: Any) -> dict[str, str]:
    """``["conv_dim=4", "algo=locon"]`` -> ``{"conv_dim": "4", "algo": "locon"}``: sd-scripts' rule, computed in
    :func:`lora_compat.semantics.args.network_args` (items without ``=`` are kept with an empty value)."""
    from lora_compat.semantics.args import network_args

    return network_args(value)


def network_kind(network_module: str | None, net_args: dict[str, str]) -> str | None:
    """The adapter kind for a network module + args, or None when lora-compat cannot run it."""
    if network_module is not None and not isinstance(network_module, str):
        return None
    module = (network_module or "networks.lora").strip()
    if module in ("networks.lora", "sd_scripts.networks.lora"):
        return "locon" if network_arg_int(net_args, "conv_dim") or net_args.get("conv_block_dims") else "lora"
    if module in ("networks.loha",):
        return "loha"
    if module in ("networks.lokr",):
        return "lokr"
    if module in ("lycoris.kohya", "locon.locon_kohya", "locon.locon.locon_kohya"):
        algo = net_args.get("algo", "lora" if module == "lycoris.kohya" else "locon").lower()
        if algo in ("lora", "locon"):
            return "locon" if network_arg_int(net_args, "conv_dim") or module != "lycoris.kohya" else "lora"
        if algo in ("loha", "lokr"):
            return algo
    return None


def network_arg_int(net_args: dict[str, str], key: str) -> int | None:
    """An int-valued network arg (:func:`lora_compat.semantics.args.arg_int`)."""
    from lora_compat.semantics.args import arg_int

    return arg_int(net_args, key)


def network_arg_float(net_args: dict[str, str], key: str) -> float | None:
    """A float-valued network arg (:func:`lora_compat.semantics.args.arg_float`)."""
    from lora_compat.semantics.args import arg_float

    return arg_float(net_args, key)


# -------------------------------------------------------------------------------------------------------
# reader

class _Reader:
    def __init__(self, doc: Document, cfg: CanonicalConfig):
        self.doc, self.cfg = doc, cfg

    def origin(self, key: str) -> Origin:
        return self.doc.origin(key)

    def put(self, name: str, value: Any, key: str, kind: str | None = None, conversion: str | None = None,
            extra_keys: tuple[str, ...] = ()) -> None:
        origins = (self.origin(key), *tuple(self.origin(k) for k in extra_keys))
        if kind is None:
            kind = KEPT if key.rsplit(".", 1)[-1] == name else RENAMED
        self.cfg.options[name] = Setting(value, Provenance(kind, origins, conversion))

    def invalid(self, name: str, key: str, value: Any, reason: str) -> None:
        self.cfg.invalid.append(InvalidValue(name, value, self.origin(key), reason))

    def note(self, code: str, key: str | None, **data: Any) -> None:
        self.cfg.notes.append(Note(code, NATIVE_NOTE_CODES[code], self.origin(key) if key else None, data))


def read(doc: Document, detection: Detection | None = None) -> CanonicalConfig:
    """Normalize a native lora-compat TOML into the canonical model."""
    data = doc.data
    if not isinstance(data, dict):
        raise UserError("a native lora-compat config must be a TOML table", file=doc.path)
    fmt = data.get("format")
    if fmt != FORMAT:
        line, col = doc.position("format")
        raise UserError(f"unsupported native format {fmt!r}; this lora-compat reads {FORMAT!r}",
                        file=doc.path, line=line, col=col, key="format")
    cfg = CanonicalConfig(dialect="native", source=doc.path, files=[doc.path])
    r = _Reader(doc, cfg)
    cfg.consumed.append((r.origin("format"), ""))   # the format marker: no setting (every native output has one)
    lay = layout()
    for sec, body in data.items():
        if sec == "format":
            continue
        if sec == "general":
            _read_level(r, body, "general", cfg.general)
            continue
        if sec == "datasets":
            _read_datasets(r, body)
            continue
        if sec not in lay:
            cfg.unknown_keys.append(UnknownKey(sec, body, r.origin(sec), "not a section of the native config"))
            continue
        if not isinstance(body, dict):
            r.invalid(sec, sec, body, f"[{sec}] must be a table")
            continue
        _read_section(r, sec, body, lay[sec])
    _check_peft_rules(r)
    if isinstance(data.get("general"), dict) or isinstance(data.get("datasets"), list):
        # the dataset levels are sd-scripts' dataset config: what its schema refuses (a training option such as
        # learning_rate inside [[datasets]]) is invalid here too, or a migrated --dataset_config would be refused
        from lora_compat.config.dataset import check_dataset_config
        from lora_compat.config.dialects.dataset_toml import record_dataset_errors

        levels = {k: data[k] for k in ("general", "datasets") if k in data}
        record_dataset_errors(cfg, doc, check_dataset_config(levels, masked_loss=bool(cfg.get("masked_loss"))))
    if not cfg.datasets:
        from lora_compat.config.kohya_folder import apply_kohya_folder

        apply_kohya_folder(cfg)  # [data] train_data_dir with <repeats>_<name> folders, as sd-scripts does
    return cfg


def _read_section(r: _Reader, sec: str, body: dict[str, Any], fields: dict[str, Any]) -> None:
    from lora_compat.config import options

    for fld, value in body.items():
        key = join_key(sec, fld)
        if fld not in fields:
            r.cfg.unknown_keys.append(UnknownKey(key, value, r.origin(key), f"not a field of [{sec}]"))
            continue
        err = _type_error(native_field_validator(sec, fld), value) if fld in _SPECIAL_FIELDS or \
            str(fields[fld]).startswith(PEFT_PREFIX) else None
        canon = fields[fld]
        if err:
            r.invalid(canon if isinstance(canon, str) else fld, key, value, err)
            continue
        if fld in _SPECIAL_FIELDS:
            continue  # handled below, once the whole section is known
        if isinstance(canon, str) and not canon.startswith(PEFT_PREFIX):
            err = _type_error(option_validator(canon), value) if options.spec(canon) else None
            if err:
                r.invalid(canon, key, value, err)
                continue
        r.put(canon, value, key)
    if sec == "model":
        _read_arch(r, body)
    elif sec == "network":
        _read_network(r, body)
    elif sec == "scheduler":
        _read_unit_pair(r, body, "scheduler", "warmup", "lr_warmup_steps")
        _read_unit_pair(r, body, "scheduler", "decay", "lr_decay_steps")
        _read_kv_args(r, body, "scheduler", "lr_scheduler_args")
    elif sec == "optimizer":
        _read_kv_args(r, body, "optimizer", "optimizer_args")


def _valid(r: _Reader, sec: str, fld: str, body: dict[str, Any]) -> bool:
    return fld in body and _type_error(native_field_validator(sec, fld), body[fld]) is None


def _read_arch(r: _Reader, body: dict[str, Any]) -> None:
    if not _valid(r, "model", "arch", body):
        return
    arch = body["arch"]
    if arch == "sdxl":
        r.put("sdxl", True, "model.arch", RENAMED, 'arch "sdxl" -> sdxl = true (sdxl_train_network.py)')
    elif arch == "sd2":
        r.put("v2", True, "model.arch", RENAMED, 'arch "sd2" -> v2 = true')


def _read_network(r: _Reader, body: dict[str, Any]) -> None:
    module = body["module"] if _valid(r, "network", "module", body) else None
    kind = body["kind"] if _valid(r, "network", "kind", body) else None
    args: list[str] = []
    algo_implied = None
    if module is not None:
        r.put("network_module", module, "network.module", RENAMED)
    elif kind is not None:
        module, algo_implied = KIND_MODULE[kind]
        r.put("network_module", module, "network.kind", DERIVED, f'kind "{kind}" -> network_module {module}')
    extra = body["args"] if _valid(r, "network", "args", body) else {}
    has_algo = "algo" in parse_network_args(extra)
    if algo_implied and not has_algo:
        args.append(f"algo={algo_implied}")
    keys = []
    for fld, arg in NETWORK_ARG_FIELDS.items():
        if _valid(r, "network", fld, body):
            args.append(f"{arg}={args_string(body[fld])}")
            keys.append(join_key("network", fld))
    if _valid(r, "network", "args", body):
        args.extend(list(extra) if isinstance(extra, list) else [f"{k}={v}" for k, v in extra.items()])
        keys.append("network.args")
    if args:
        first = keys[0] if keys else "network.kind"
        r.put("network_args", args, first, RENAMED if keys else DERIVED,
              "[network] " + ", ".join(k.split(".", 1)[1] for k in keys or ["network.kind"]) + " -> network_args",
              extra_keys=tuple(keys[1:]))
    if kind is not None:
        actual = network_kind(module, parse_network_args(args))
        if actual != kind:
            r.invalid("network_module", "network.kind", kind,
                      f'kind "{kind}" does not match module {module!r} with these args (it is '
                      f'{actual or "not a kind lora-compat runs"}); locon needs conv_r')


def _read_unit_pair(r: _Reader, body: dict[str, Any], sec: str, stem: str, option: str) -> None:
    steps, ratio = f"{stem}_steps", f"{stem}_ratio"
    has_s, has_r = _valid(r, sec, steps, body), _valid(r, sec, ratio, body)
    if has_s and has_r:
        r.invalid(option, join_key(sec, ratio), body[ratio], f"give either {steps} or {ratio}, not both")
        return
    if has_s:
        r.put(option, int(body[steps]), join_key(sec, steps), RENAMED,
              f"{steps} {body[steps]} (steps) -> {option} {int(body[steps])} (an int means steps)")
    elif has_r:
        val = float(body[ratio])
        r.put(option, val, join_key(sec, ratio), RENAMED,
              f"{ratio} {body[ratio]} (fraction) -> {option} {val!r} (a float means a ratio)")


def _read_kv_args(r: _Reader, body: dict[str, Any], sec: str, option: str) -> None:
    if not _valid(r, sec, "args", body):
        return
    val = body["args"]
    items = [f"{k}={v}" for k, v in val.items()] if isinstance(val, dict) else list(val)
    r.put(option, items, join_key(sec, "args"), RENAMED, f"[{sec}] args -> {option}")


def _read_level(r: _Reader, body: Any, key: str, target: dict[str, Setting]) -> None:
    if not isinstance(body, dict):
        r.invalid(key, key, body, f"{key} must be a table")
        return
    for k, v in body.items():
        if k == "subsets":
            continue
        path = join_key(key, k)
        target[k] = Setting(v, Provenance(KEPT, (r.origin(path),)))


def _read_datasets(r: _Reader, body: Any) -> None:
    if not isinstance(body, list):
        r.invalid("datasets", "datasets", body, "datasets must be an array of tables ([[datasets]])")
        return
    for di, ds_body in enumerate(body):
        dkey = join_key("datasets", di)
        ds = Dataset(origin=r.origin(dkey))
        _read_level(r, ds_body, dkey, ds.params)
        subs = ds_body.get("subsets", []) if isinstance(ds_body, dict) else []
        if not isinstance(subs, list):
            r.invalid("subsets", join_key(dkey, "subsets"), subs, "subsets must be an array of tables")
            subs = []
        for si, sub_body in enumerate(subs):
            skey = join_key(join_key(dkey, "subsets"), si)
            sub = Subset(origin=r.origin(skey))
            _read_level(r, sub_body, skey, sub.params)
            ds.subsets.append(sub)
        r.cfg.datasets.append(ds)


def _ranks(cfg: CanonicalConfig) -> list[int]:
    """Every rank the native [network] gives a module: r (sd-scripts' 4 when unset), conv_r, rank_pattern."""
    ranks = [v for v in (cfg.get("network_dim") or 4,
                         network_arg_int(parse_network_args(cfg.get("network_args")), "conv_dim"))
             if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    pattern = cfg.get(PEFT_PREFIX + "rank_pattern")
    if isinstance(pattern, dict):
        ranks += [v for v in pattern.values() if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    return ranks


def _check_peft_rules(r: _Reader) -> None:
    """PEFT's own rules: what PEFT refuses is an invalid value (lint LC101 error, migrate/plan/train refuse the
    file); what PEFT accepts but means something else than in kohya tools is a note (lint warning)."""
    get = r.cfg.get
    init = get("peft.init_lora_weights", True)
    loftq = get("peft.loftq_config")
    if loftq is not None and init != "loftq":
        r.note("native-loftq-needs-init", "network.loftq_config")
    if init == "loftq" and loftq is None:
        # PEFT's LoraConfig raises ValueError: the file cannot run at all
        r.invalid(PEFT_PREFIX + "init_lora_weights", "network.init_lora_weights", init,
                  'init_lora_weights = "loftq" needs a loftq_config in [network] (PEFT raises without one)')
    if init == "orthogonal":
        odd = sorted({v for v in _ranks(r.cfg) if v % 2})
        if odd:
            # PEFT's orthogonal_init raises for an odd rank when the adapter is injected
            r.invalid(PEFT_PREFIX + "init_lora_weights", "network.init_lora_weights", init,
                      f'init_lora_weights = "orthogonal" needs even ranks; rank {odd[0]} is odd (PEFT raises)')
    if init == "loftq" and (get("fp8_base") or get("fp8_base_unet")):
        r.note("native-loftq-quantized-base", "network.init_lora_weights")
    if get("peft.use_rslora"):
        r.note("native-rslora-scale", "network.use_rslora")
    if get("peft.use_dora"):
        r.note("native-dora-not-kohya", "network.use_dora")
    if get("peft.lora_dropout") and get("network_dropout"):
        r.note("native-lora-dropout-not-kohya", "network.lora_dropout")
    if init is not True and "peft.init_lora_weights" in r.cfg.options:
        r.note("native-init-not-kohya", "network.init_lora_weights")
    targets = get(PEFT_PREFIX + "target_modules")
    if isinstance(targets, str):
        import re

        try:
            re.compile(targets)
        except re.error as exc:
            r.invalid(PEFT_PREFIX + "target_modules", "network.target_modules", targets,
                      f"not a valid regular expression: {exc}")
    for f in ("target_modules", "rank_pattern", "alpha_pattern"):
        if get(PEFT_PREFIX + f):
            r.note("native-pattern-no-kohya", f"network.{f}")
            break
