"""Explain one option: its real meaning, type, default, range, names in each dialect, PEFT/diffusers mapping
and the common misconception — everything read from schemas/ through :mod:`lora_compat.config.options`.

``explain_option_data(name)`` gives a JSON-ready dict (the ``explain KEY --format json`` contract, documented
in docs/cli.md by the explain command's owner); ``explain_option(name)`` renders it with rich. Both accept
aliases: Derrian's ``shuffle_captions``, a kohya GUI key, a ``--long_option``, a dataset-config key.
"""

from __future__ import annotations

import difflib
import io
from typing import Any

from lora_compat.config import options
from lora_compat.errors import UserError

OPTION, DATASET_KEY, FRONTEND_KEY = "option", "dataset-key", "frontend-only"


def _candidates() -> list[str]:
    names = list(options.option_names()) + options.dataset_param_names()
    names += list(options.misconception_keys()) + list(options.frontend_only_keys())
    for per_dialect in options.dialect_names().values():
        for paths in per_dialect.values():
            names += [p.rsplit(".", 1)[-1] for p in paths]
    return sorted(set(names))


def _unknown(query: str) -> UserError:
    close = difflib.get_close_matches(query.lstrip("-"), _candidates(), n=3, cutoff=0.7)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UserError(f"unknown option or key {query!r}{hint} (see docs/options.md for every option)")


def lookup(name_or_alias: str) -> tuple[str, str, list[str]]:
    """``(kind, name, other_matches)``: what a query refers to. Raises :class:`UserError` when unknown.

    ``kind`` is ``"option"`` (a canonical sd-scripts option), ``"dataset-key"`` (a dataset-config key that
    is not also an option name, e.g. ``num_repeats``, ``class_tokens``) or ``"frontend-only"`` (a legacy
    front-end key that reaches no sd-scripts option, e.g. Derrian ``save_json_only``).
    """
    query = name_or_alias.strip()
    key = query.lstrip("-")
    if options.is_option(key):
        return OPTION, key, []
    if options.is_dataset_param(key):
        return DATASET_KEY, key, []
    found = options.resolve(query)
    if not found:
        low = key.lower()
        ds = [n for n in options.dataset_param_names() if n.lower() == low]
        if ds:
            return DATASET_KEY, ds[0], []
        fe = [k for k in options.frontend_only_keys() if k.lower() == low]
        if fe:
            return FRONTEND_KEY, fe[0], []
        raise _unknown(query)
    return OPTION, found[0], found[1:]


def _dataset_info(key: str) -> dict[str, Any] | None:
    spec = options.dataset_spec(key)
    if spec is None:
        return None
    return {
        "key": key,
        "type": spec.get("type"),
        "default": spec.get("default"),
        "levels": options.dataset_levels(key),
        "fallback_option": options.dataset_fallback_option(key),
        "description": spec.get("description", ""),
        "strict_float": bool(spec.get("x-strict-float")),
        "reference": spec.get("x-ref"),
    }


def explain_option_data(name_or_alias: str) -> dict[str, Any]:
    """Everything known about an option (or dataset key) as a JSON-ready dict.

    Keys: ``query``, ``kind`` (``option``/``dataset-key``), ``name``, ``also_matches``, ``description``,
    ``type`` (JSON types), ``default``, ``enum``, ``bounds``, ``cli`` (argparse facts), ``group``, ``arch``,
    ``arch_note``, ``sdxl_only``, ``scripts`` (the scripts that add an option train_network.py lacks, None = every
    script), ``family_defaults`` (``{family: default}`` where the default differs per family's script),
    ``recommended`` (``{family: value}`` sd-scripts' docs recommend), ``since``, ``since_note``, ``peft``,
    ``diffusers``, ``misconceptions``
    (``[{as_written, dialect, source, claim, truth, quoted}]``), ``secret``, ``security``, ``names`` (``{dialect: [keys
    as written]}``, canonical name under ``sd-scripts``), ``dataset`` (the dataset-config key it falls back
    to, or for a dataset key its own facts), ``reference``. Raises :class:`UserError` for unknown names.
    """
    kind, name, others = lookup(name_or_alias)
    if kind == FRONTEND_KEY:
        entries = options.frontend_only_keys()[name]
        reasons = "; ".join(f"{e['dialect']}: {e['reason'] or e['description']}" for e in entries)
        return {
            "query": name_or_alias, "kind": kind, "name": name, "also_matches": others,
            "description": f"A legacy front-end key with no sd-scripts option: it never reaches training "
                           f"({reasons}).",
            "type": None, "default": None, "enum": None, "bounds": {}, "cli": None, "group": None, "arch": None,
            "arch_note": None, "sdxl_only": False, "scripts": None, "family_defaults": {}, "recommended": {},
            "since": None, "since_note": None, "peft": None,
            "diffusers": None, "misconceptions": [], "secret": False, "security": None,
            "names": {e["dialect"]: [e["key"]] for e in entries}, "dataset": None, "reference": None,
        }
    if kind == DATASET_KEY:
        info = _dataset_info(name) or {}
        fallback = info.get("fallback_option")
        return {
            "query": name_or_alias, "kind": kind, "name": name, "also_matches": others,
            "description": info.get("description", ""), "type": info.get("type"), "default": info.get("default"),
            "enum": (options.dataset_spec(name) or {}).get("enum"), "bounds": {}, "cli": None,
            "group": "dataset", "arch": None, "arch_note": None, "sdxl_only": False, "scripts": None,
            "family_defaults": {}, "recommended": {}, "since": None,
            "since_note": None, "peft": None, "diffusers": None,
            "misconceptions": options.dataset_misconceptions(name)
            + (options.misconceptions(fallback) if fallback else []),
            "secret": False, "security": None,
            "names": {"sd-scripts-dataset": [name], **({"sd-scripts": [fallback]} if fallback else {})},
            "dataset": info, "reference": info.get("reference"),
        }
    spec = options.spec(name) or {}
    names = {"sd-scripts": [name]}
    names.update(options.names_in_dialects(name))
    dkey = options.dataset_key(name)
    return {
        "query": name_or_alias, "kind": kind, "name": name, "also_matches": others,
        "description": options.description(name),
        "type": spec.get("type"), "default": options.default(name), "enum": options.enum(name),
        "bounds": options.bounds(name), "cli": options.cli(name), "group": options.group(name),
        "arch": options.arch(name), "arch_note": spec.get("x-arch-note"), "sdxl_only": options.is_sdxl_only(name),
        "scripts": options.scripts(name), "family_defaults": options.family_defaults(name),
        "recommended": dict(spec.get("x-recommended") or {}),
        "since": options.since(name), "since_note": spec.get("x-since-note"),
        "peft": options.peft(name), "diffusers": options.diffusers(name),
        "misconceptions": options.misconceptions(name) + (options.dataset_misconceptions(dkey) if dkey else []),
        "secret": options.is_secret(name), "security": options.security(name),
        "names": names, "dataset": _dataset_info(dkey) if dkey else None,
        "reference": options.reference(name),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "None (unset)"
    if value == "":
        return '"" (empty)'
    return repr(value) if isinstance(value, str) else str(value)


def _type_text(data: dict[str, Any]) -> str:
    t = data.get("type")
    if isinstance(t, dict) or t is None:
        return "see schema"
    types = t if isinstance(t, list) else [t]
    out = " | ".join(x for x in types if x != "null")
    cli = data.get("cli") or {}
    if cli.get("nargs") == "*":
        out += f" (command line: zero or more {cli.get('type')} values)"
    elif cli.get("type") == "int_or_float":
        out += " (int = steps, float < 1 = ratio)"
    elif cli.get("action") == "store_true":
        out += " (flag)"
    return out or "unset"


def explain_option(name_or_alias: str) -> Any:
    """A rich renderable explaining the option (see :func:`explain_option_data`)."""
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    data = explain_option_data(name_or_alias)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold cyan", no_wrap=True)
    facts.add_column()

    def row(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            facts.add_row(label, Text(str(value)))

    row("kind", {DATASET_KEY: "dataset-config key", FRONTEND_KEY: "front-end-only key"}.get(
        data["kind"], f"option ({data.get('group')})"))
    if data["kind"] != FRONTEND_KEY:
        row("type", _type_text(data))
        row("default", _fmt(data["default"]))
    if data.get("family_defaults"):
        row("default per family", ", ".join(f"{f}: {_fmt(v)}" for f, v in data["family_defaults"].items()))
    if data.get("recommended"):
        row("recommended (docs)", ", ".join(f"{f}: {_fmt(v)}" for f, v in data["recommended"].items()))
    if data.get("scripts"):
        row("scripts", ", ".join(data["scripts"]) + " (train_network.py has no such option)")
    if data.get("enum"):
        row("allowed", ", ".join(_fmt(v) for v in data["enum"]))
    b = data.get("bounds") or {}
    if b:
        row("range", ", ".join(f"{k} {v}" for k, v in b.items()))
    if data.get("arch"):
        row("architectures", ", ".join(data["arch"]) + (f" — {data['arch_note']}" if data.get("arch_note") else ""))
    elif data.get("arch_note"):
        row("architectures", data["arch_note"])
    if data.get("since") or data.get("since_note"):
        row("since", " ".join(x for x in (data.get("since"), data.get("since_note")) if x))
    names = "; ".join(f"{d}: {', '.join(ks)}" for d, ks in data["names"].items())
    row("names", names)
    ds = data.get("dataset")
    if ds and data["kind"] == OPTION:
        row("dataset config", f"fallback for dataset key `{ds['key']}` (levels {', '.join(ds['levels'])})")
    if ds and data["kind"] == DATASET_KEY:
        row("levels", ", ".join(ds["levels"]))
        if ds.get("fallback_option"):
            row("command-line fallback", f"--{ds['fallback_option']}")
        if ds.get("strict_float"):
            row("note", "voluptuous float: integers are rejected (write 0.0, not 0)")
    row("PEFT", data.get("peft"))
    row("diffusers", data.get("diffusers"))
    if data.get("secret"):
        row("credential", "yes — redacted from every lora-compat output; keep it out of shared configs")
    row("security", data.get("security"))
    row("reference", data.get("reference"))
    if data.get("also_matches"):
        row("also matches", ", ".join(data["also_matches"]))

    parts: list[Any] = [Text(data["description"] or "(no description)"), Text(""), facts]
    for m in data.get("misconceptions") or []:
        who = f"{m['as_written']}" + (f" ({m['dialect']})" if m.get("dialect") else "")
        parts += [Text(""), Text.from_markup(f"[bold yellow]Misconception[/] — {escape(m['source'])}, key "
                                             f"[bold]{escape(who)}[/]:"),
                  Text(f'  wrong: "{m["claim"]}"' if m.get("quoted") else f"  belief: {m['claim']}", style="red"),
                  Text(f"  true:  {m['truth']}", style="green")]
    title = data["name"] if data["query"].lstrip("-") == data["name"] else f"{data['name']}  (from {data['query']!r})"
    return Panel(Group(*parts), title=escape(title), title_align="left", expand=False)


def explain_option_text(name_or_alias: str, width: int = 100) -> str:
    """The explanation as plain text (no colour), e.g. for tests and non-terminal output."""
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None, force_terminal=False, file=io.StringIO())
    console.print(explain_option(name_or_alias))
    return console.export_text()
