"""Canonical config -> native lora-compat TOML (the inverse of :mod:`lora_compat.config.dialects.native`)."""

from __future__ import annotations

import re
from typing import Any

from lora_compat.arch.families import FLUX_FAMILIES, display_name
from lora_compat.config.dialects.native import (
    FORMAT,
    KIND_MODULE,
    NETWORK_ARG_FIELDS,
    args_string,
    field_of_option,
    layout,
)
from lora_compat.config.model import DERIVED, CanonicalConfig, Provenance, Setting
from lora_compat.config.secrets import is_secret_key
from lora_compat.migrate.report import DROPPED, NO_EQUIVALENT, MigrationReport, lost, written
from lora_compat.migrate.sd_scripts import CONFIG_ONLY, report_folder_datasets
from lora_compat.migrate.toml_out import compact_arrays, dumps_datasets, toml_value_ok

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")

# options written by dedicated code below
_HANDLED = {"sdxl", "v2", "network_module", "network_args", "lr_warmup_steps", "lr_decay_steps",
            "optimizer_args", "lr_scheduler_args"}


def typed_arg(text: str) -> int | float | bool | None:
    """A network_args string as a TOML number when it round-trips exactly (``str(value) == text``)."""
    if _INT.match(text):
        v: Any = int(text)
    elif _FLOAT.match(text):
        v = float(text)
    else:
        return None
    return v if str(v) == text else None


def kv_table(items: Any) -> dict[str, str] | None:
    """``["k=v", ...]`` as ``{k: v}``, or None when an item has no ``=`` (then the list is kept as is).

    sd-scripts turns these lists into keyword dicts, so a repeated key keeps its last value, as here.
    """
    if not isinstance(items, list) or not all(isinstance(i, str) and "=" in i and i.partition("=")[0]
                                              for i in items):
        return None
    out: dict[str, str] = {}
    for item in items:
        k, _, v = item.partition("=")
        out.pop(k, None)  # last one wins, in the position sd-scripts' dict would report it
        out[k] = v
    return out


def _field_accepts(section: str, fld: str, value: Any) -> bool:
    """Whether the native schema accepts ``value`` for ``[section] fld`` (else it stays a string in args)."""
    from lora_compat.config.dialects.native import native_field_validator

    return not any(True for _ in native_field_validator(section, fld).iter_errors(value))


def _duplicates(items: list[str]) -> list[str]:
    keys = [i.partition("=")[0] for i in items]
    return sorted({k for k in keys if keys.count(k) > 1})


def to_native(cfg: CanonicalConfig, report: MigrationReport) -> dict[str, Any]:
    """The native document (a dict ready for tomli_w) for ``cfg``; every decision goes to ``report``."""
    lay = layout()
    doc: dict[str, Any] = {"format": FORMAT}
    sections: dict[str, dict[str, Any]] = {sec: {} for sec in lay}
    fields = field_of_option()

    def put(sec: str, fld: str, option: str, setting: Setting | None, value: Any, conversion: str | None = None):
        sections[sec][fld] = value
        report.add(written(option, setting.prov if setting else None, f"{sec}.{fld}", value,
                           conversion=conversion))

    # [model] arch
    if cfg.family in FLUX_FAMILIES:
        arch = _flux_arch(cfg, report)
        arch_prov = None
    else:
        arch = cfg.arch()
        arch_prov = cfg.options.get("sdxl") if cfg.is_sdxl else cfg.options.get("v2")
        entry = written("sdxl" if cfg.is_sdxl else "v2", arch_prov.prov if arch_prov else None, "model.arch",
                        arch)
        if arch_prov is None:
            entry.detail = "neither sdxl nor v2 is set: SD 1.x (train_network.py)"
        report.add(entry)
    sections["model"]["arch"] = arch
    for opt in ("sdxl", "v2"):
        s = cfg.options.get(opt)
        if s is not None and s is not arch_prov and s.value:
            report.add(lost(opt, s.prov, NO_EQUIVALENT, f"{opt} = true conflicts with arch {arch!r}", s.value))

    _network(cfg, sections["network"], report)
    _unit_pair(cfg, sections["scheduler"], report, "lr_warmup_steps", "warmup")
    _unit_pair(cfg, sections["scheduler"], report, "lr_decay_steps", "decay")
    _kv_args(cfg, sections["optimizer"], report, "optimizer_args")
    _kv_args(cfg, sections["scheduler"], report, "lr_scheduler_args")

    for name, setting in cfg.options.items():
        if name in _HANDLED:
            continue
        if is_secret_key(name):
            report.add(lost(name, setting.prov, DROPPED, "credential: never written by lora-compat",
                            setting.value, loss=False))
            continue
        if name in CONFIG_ONLY:
            report.add(lost(name, setting.prov, DROPPED, CONFIG_ONLY[name], setting.value, loss=False))
            continue
        if name == "dataset_config" and (cfg.datasets or cfg.general):
            report.add(written(name, setting.prov, "general / datasets", setting.value,
                               conversion=f"dataset config {setting.value} inlined as [general] / [[datasets]]"))
            continue
        if setting.value is None:
            report.add(lost(name, setting.prov, DROPPED, "null (unset): the default applies", None, loss=False))
            continue
        where = fields.get(name)
        if not toml_value_ok(setting.value):
            report.add(lost(name, setting.prov, NO_EQUIVALENT, "the value cannot be written in TOML (a null "
                            "inside a list, or an unknown type)", repr(setting.value)))
            continue
        if where is None:
            report.add(lost(name, setting.prov, NO_EQUIVALENT, "not an option the native config knows",
                            setting.value))
            continue
        put(where[0], where[1], name, setting, setting.value)

    for sec in lay:  # schema order, fields in schema order: the output does not depend on input order
        body = sections[sec]
        if body:
            doc[sec] = {f: body[f] for f in lay[sec] if f in body}
    _datasets(cfg, doc, report)
    return doc


def _flux_arch(cfg: CanonicalConfig, report: MigrationReport) -> str:
    """``[model] arch`` of a FLUX.1 / Chroma config: the family id (``flux1``, ``chroma``), which makes the native
    reader decide the same family (flux_train_network.py). The family came from the input's markers (script,
    GUI checkbox, Derrian ``[flux_args]``, family-only options), recorded as the report line's detail."""
    from lora_compat.migrate.report import ReportEntry

    arch = str(cfg.family)
    report.add(ReportEntry(DERIVED, "family", None, None, None, "model.arch", arch,
                           f"family {display_name(arch)} (from {cfg.family_source}) -> arch {arch!r} "
                           "(flux_train_network.py)"))
    for opt in ("sdxl", "v2"):
        s = cfg.options.get(opt)
        if s is not None and s.value:
            report.add(lost(opt, s.prov, NO_EQUIVALENT, f"{opt} = true conflicts with arch {arch!r}", s.value))
    return arch


def _network(cfg: CanonicalConfig, net: dict[str, Any], report: MigrationReport) -> None:
    from lora_compat.config.dialects.native import network_kind, parse_network_args

    mod_s = cfg.options.get("network_module")
    args_s = cfg.options.get("network_args")
    mod_prov = mod_s.prov if mod_s else None
    args_prov = args_s.prov if args_s else None
    module = mod_s.value if mod_s else None
    if module is not None and not isinstance(module, str):
        report.add(lost("network_module", mod_prov, NO_EQUIVALENT, "network_module is not a module name", module))
        module = None
    raw_args = args_s.value if args_s else None
    items = list(raw_args) if isinstance(raw_args, list) else []
    if raw_args is not None and not isinstance(raw_args, list):
        report.add(lost("network_args", args_prov, NO_EQUIVALENT,
                        "network_args is not a list of key=value strings", raw_args))
    if not all(isinstance(i, str) for i in items):
        report.add(lost("network_args", args_prov, NO_EQUIVALENT, "network_args must be key=value strings",
                        raw_args))
        items = []
    table = kv_table(items) if items else {}
    kind = network_kind(module, parse_network_args(items)) if (module or items) else None
    if table is None:
        # an item without "=" (sd-scripts would fail on it): keep the list verbatim, nothing typed
        args_list: list[str] | None = list(items)
        args: dict[str, str] = {}
    else:
        args_list, args = None, dict(table)
    if kind is not None and module is not None:
        implied_module, implied_algo = KIND_MODULE[kind]
        net["kind"] = kind
        algo = (args.get("algo") or "").lower() if args_list is None else None
        if module == implied_module and (implied_algo is None or algo == implied_algo):
            report.add(written("network_module", mod_prov, "network.kind", kind,
                               conversion=f"network_module {module} -> kind {kind!r}"))
        else:
            net["module"] = module
            report.add(written("network_module", mod_prov, "network.module", module))
    elif module is not None:
        net["module"] = module
        report.add(written("network_module", mod_prov, "network.module", module))
    for fld, arg in NETWORK_ARG_FIELDS.items():
        if arg in args:
            typed = typed_arg(args[arg])
            if typed is not None and _field_accepts("network", fld, typed):
                net[fld] = typed
                args.pop(arg)
                report.add(written(f"network_args.{arg}", _origin_only(args_prov, f"network.{fld}"),
                                   f"network.{fld}", typed,
                                   conversion=f'network_args "{arg}={args_string(typed)}" -> {fld} = {typed!r}'))
    dup = _duplicates(items) if table is not None else []
    if args_list is not None:
        net["args"] = args_list
        report.add(written("network_args", _origin_only(args_prov, "network.args"), "network.args", args_list))
    elif args:
        net["args"] = args
        report.add(written("network_args", _origin_only(args_prov, "network.args"), "network.args", args,
                           conversion=(f"repeated network_args key(s) {', '.join(dup)}: the last value is kept, "
                                       "as sd-scripts' keyword dict does") if dup else None))


def _origin_only(prov: Provenance | None, key: str) -> Provenance | None:
    """``prov`` narrowed to its origin at ``key`` (network_args gathers several native fields), else ``prov``."""
    if prov is None:
        return None
    for o in prov.origins:
        if o.key == key:
            return Provenance(prov.kind, (o,), prov.conversion)
    return prov


def _unit_pair(cfg: CanonicalConfig, sec: dict[str, Any], report: MigrationReport, option: str, stem: str) -> None:
    s = cfg.options.get(option)
    if s is None or s.value is None:
        if s is not None:
            report.add(lost(option, s.prov, DROPPED, "null (unset): the default applies", None, loss=False))
        return
    v = s.value
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        sec[f"{stem}_steps"] = v
        report.add(written(option, s.prov, f"scheduler.{stem}_steps", v,
                           conversion=f"{option} {v} (an int: steps) -> {stem}_steps {v}"))
    elif isinstance(v, float):
        sec[f"{stem}_ratio"] = v
        report.add(written(option, s.prov, f"scheduler.{stem}_ratio", v,
                           conversion=f"{option} {v!r} (a float: fraction of max_train_steps) -> {stem}_ratio {v!r}"))
    elif isinstance(v, str) and v.strip().endswith("%") and typed_arg(v.strip()[:-1].strip()) is not None:
        pct = float(v.strip()[:-1])
        sec[f"{stem}_ratio"] = pct / 100
        report.add(written(option, s.prov, f"scheduler.{stem}_ratio", pct / 100,
                           conversion=f'{option} "{v}" -> {stem}_ratio {pct} / 100 = {pct / 100!r}'))
    else:
        report.add(lost(option, s.prov, NO_EQUIVALENT, f"{v!r} is neither steps (int) nor a ratio (float)", v))


def _kv_args(cfg: CanonicalConfig, sec: dict[str, Any], report: MigrationReport, option: str) -> None:
    s = cfg.options.get(option)
    if s is None or s.value is None:
        return
    section = "optimizer" if option == "optimizer_args" else "scheduler"
    table = kv_table(s.value)
    if table is not None:
        sec["args"] = table
        report.add(written(option, s.prov, f"{section}.args", table))
    elif isinstance(s.value, list) and all(isinstance(i, str) for i in s.value):
        sec["args"] = list(s.value)
        report.add(written(option, s.prov, f"{section}.args", list(s.value)))
    else:
        report.add(lost(option, s.prov, NO_EQUIVALENT, "not a list of key=value strings", s.value))


def _from_folder_options(cfg: CanonicalConfig) -> bool:
    """True when ``cfg.datasets`` are exactly what its ``train_data_dir`` / ``reg_data_dir`` / ``in_json`` derive
    (the reader filled them from the kohya folder convention): the options are written, and a reader derives the
    same datasets from them again, so writing them as ``[[datasets]]`` too would change the file's form."""
    from lora_compat.config.kohya_folder import command_line_datasets

    if not cfg.datasets or cfg.general or cfg.get("dataset_config"):
        return False

    def values(datasets: list) -> list:
        return [({k: s.value for k, s in ds.params.items()},
                 [{k: s.value for k, s in sub.params.items()} for sub in ds.subsets]) for ds in datasets]

    return values(cfg.datasets) == values(command_line_datasets(cfg))


def _datasets(cfg: CanonicalConfig, doc: dict[str, Any], report: MigrationReport) -> None:
    if _from_folder_options(cfg):
        report_folder_datasets(cfg, report)
        return
    if cfg.general:
        doc["general"] = _level(cfg.general, "general", report)
    if cfg.datasets:
        out = []
        for di, ds in enumerate(cfg.datasets):
            body = _level(ds.params, f"datasets[{di}]", report)
            subs = [_level(sub.params, f"datasets[{di}].subsets[{si}]", report) for si, sub in enumerate(ds.subsets)]
            if subs:
                body["subsets"] = subs
            out.append(body)
        doc["datasets"] = out


def _level(params: dict[str, Setting], path: str, report: MigrationReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, s in params.items():
        if s.value is None:
            report.add(lost(f"{path}.{k}", s.prov, DROPPED, "null (unset): the next level applies", None,
                            loss=False))
            continue
        if not toml_value_ok(s.value):
            report.add(lost(f"{path}.{k}", s.prov, NO_EQUIVALENT, "the value cannot be written in TOML",
                            repr(s.value)))
            continue
        out[k] = s.value
        report.add(written(f"{path}.{k}", s.prov, f"{path}.{k}", s.value))
    return out


HEADER = ("# lora-compat native config: every field is described in schemas/native.schema.json.\n"
          "# `lora-compat plan FILE` shows what will run; `lora-compat lint FILE` checks it.\n")


def _section_comments(text: str) -> str:
    """A one-line comment (the section's schema description) above each top-level section header."""
    import re
    import textwrap

    from lora_compat.resources import load_schema

    props = load_schema("native.schema.json")["properties"]
    out: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines(keepends=True):
        m = re.fullmatch(r"\[\[?([a-z_0-9]+)\]\]?\n?", line)
        if m and m.group(1) in props and m.group(1) not in seen:
            seen.add(m.group(1))
            desc = props[m.group(1)].get("description", "")
            out += [f"# {part}\n" for part in textwrap.wrap(desc, 110, break_on_hyphens=False)]
        out.append(line)
    return "".join(out)


def dumps_native(cfg: CanonicalConfig, report: MigrationReport | None = None) -> str:
    """The native TOML text for ``cfg``: a fixed header, sections in schema order, each with its description
    as a comment (comments are not read back, so native -> native stays identical)."""
    import tomli_w

    report = report or MigrationReport(cfg.source, cfg.dialect, "native")
    doc = to_native(cfg, report)
    general, datasets = doc.pop("general", None), doc.pop("datasets", None)
    text = compact_arrays(tomli_w.dumps(doc))
    tail = dumps_datasets(general, datasets)
    return HEADER + _section_comments(text + ("\n" + tail if tail else ""))
