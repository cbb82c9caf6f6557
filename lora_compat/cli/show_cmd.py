"""``lora-compat show CONFIG``: detected dialect/era/tab and every canonical option with its provenance."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from lora_compat.config.dialects import DIALECTS


def _redact_tree(key: str, value: Any) -> Any:
    """Redact credentials anywhere inside a value (keys of nested tables included)."""
    from lora_compat.config.secrets import redact

    if isinstance(value, dict):
        return {k: _redact_tree(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_tree(key, v) for v in value]
    return redact(key, value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)  # JSON has no NaN/Infinity
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def show_data(cfg) -> dict[str, Any]:
    """The ``--format json`` object (a stable contract, documented in docs/cli.md)."""
    from lora_compat.config.secrets import REDACTED, is_secret_key, iter_secret_values, redact_strings

    def prov(name: str, setting) -> dict[str, Any]:
        p = setting.prov.to_json()
        p["raw"] = _jsonable(_redact_tree(name, p.get("raw")))
        if is_secret_key(name) and p.get("conversion") and setting.value not in (None, ""):
            p["conversion"] = str(p["conversion"]).replace(str(setting.value), REDACTED)
            raw = setting.prov.origin.raw if setting.prov.origin else None
            if isinstance(raw, str) and raw:
                p["conversion"] = p["conversion"].replace(raw, REDACTED)
        return p

    def level(params: dict) -> dict[str, Any]:
        return {k: _jsonable(_redact_tree(k, s.value)) for k, s in params.items()}

    from lora_compat.config.family import family_summary

    # credentials can also travel inside other strings (a GUI additional_parameters line, its provenance)
    return redact_strings({
        "dialect": cfg.dialect,
        "era": cfg.era,
        "tab": cfg.tab,
        **family_summary(cfg),
        "source": cfg.source,
        "files": list(cfg.files),
        "options": {k: _jsonable(_redact_tree(k, s.value)) for k, s in cfg.options.items()},
        "general": level(cfg.general),
        "datasets": [{"params": level(ds.params), "subsets": [level(sub.params) for sub in ds.subsets]}
                     for ds in cfg.datasets],
        "provenance": {k: prov(k, s) for k, s in cfg.options.items()},
        "unknown_keys": [{"key": u.key, "value": _jsonable(_redact_tree(u.key, u.value)), "file": u.origin.file,
                          "line": u.origin.line, "reason": u.reason} for u in cfg.unknown_keys],
        "frontend_only": [{"key": f.key, "value": _jsonable(_redact_tree(f.key, f.value)), "file": f.origin.file,
                           "line": f.origin.line, "reason": f.reason} for f in cfg.frontend_only],
        "notes": [{"code": n.code, "message": n.message, "file": n.origin.file if n.origin else None,
                   "line": n.origin.line if n.origin else None, "key": n.origin.key if n.origin else None}
                  for n in cfg.notes],
        "invalid": [{"option": i.option, "key": i.origin.key, "value": _jsonable(_redact_tree(i.origin.key, i.value)),
                     "file": i.origin.file, "line": i.origin.line, "reason": i.reason} for i in cfg.invalid],
    }, iter_secret_values(cfg))


def sd_scripts_toml(cfg) -> str:
    """``--format toml``: the canonical options as an sd-scripts ``--config_file`` TOML (the migrate writer,
    credentials left out); a dataset config alone is printed as a ``--dataset_config`` TOML."""
    from lora_compat.arch.families import MIGRATE
    from lora_compat.config.family import require_family
    from lora_compat.migrate.report import MigrationReport
    from lora_compat.migrate.sd_scripts import dumps_dataset_config, dumps_sd_scripts, needs_dataset_config

    require_family(cfg, MIGRATE)  # the migrate writer: a family it does not handle is refused, not written as SD1
    report = MigrationReport(source=cfg.source, dialect=cfg.dialect, target="sd-scripts")
    if cfg.dialect == "sd-scripts-dataset":
        return dumps_dataset_config(cfg, report) + _invalid_comments(cfg)
    text, _dataset = dumps_sd_scripts(cfg, report, None)
    if needs_dataset_config(cfg) and not cfg.get("dataset_config"):
        text += ("# the datasets of this config need their own --dataset_config file: "
                 "lora-compat migrate CONFIG --to sd-scripts -o OUT writes both\n")
    return text + _invalid_comments(cfg)


def _invalid_comments(cfg) -> str:
    """TOML comment lines naming the invalid values left out of a ``--format toml`` output."""
    from lora_compat.config.load import printable

    return "".join(f"# invalid, left out: {printable(clip(str(i.origin.key), 200))}: {printable(clip(i.reason, 300))}\n"
                   for i in cfg.invalid)


# Text tables of unknown / front-end-only keys and the notes list stop here (a generated file can hold 100k junk
# keys, and a rich table of that size takes minutes); --format json always lists every key.
MAX_TEXT_ROWS = 200
# Text cells stop after this many characters (a 4 M-character value folded by rich takes half a minute and fills
# thousands of lines); the cut says how much is left. --format json and toml always print whole values.
MAX_TEXT_CHARS = 1000


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters with a note of how many were left out (text renderers only)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters; --format json shows all)"


def _where(origin, source: str) -> str:
    if origin is None:
        return ""
    same = origin.file == source
    name = "" if same else (os.path.basename(origin.file) if origin.file else "")
    if origin.line:
        name += f":{origin.line}" if name else str(origin.line)
    return name


def _render_text(cfg) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text as RichText

    from lora_compat.config.load import printable

    def Text(text: str = "", style: str = "") -> RichText:  # noqa: N802 - stands in for rich's Text
        # every user-controlled string goes through here: Text() keeps "[...]" literal (no rich markup),
        # printable() escapes control characters (a value holding ESC sequences must not drive the terminal) and
        # clip() bounds the cell (rich's folding is slow on megabytes)
        return RichText(printable(clip(text)), style=style)

    console = Console(highlight=False, soft_wrap=False)
    head = Text()
    head.append("dialect ", style="dim").append(cfg.dialect, style="bold")
    if cfg.era:
        head.append("  era ", style="dim").append(cfg.era, style="bold")
    if cfg.tab:
        head.append("  tab ", style="dim").append(cfg.tab, style="bold")
    console.print(head)
    if cfg.family is not None:
        from lora_compat.arch.families import FAMILIES

        fam = FAMILIES[cfg.family]
        line = Text()
        line.append("family ", style="dim").append(fam.name, style="bold")
        missing = [stage for stage in ("migrate", "plan", "train") if not fam.supports(stage)]
        if missing:
            verb = "refuses" if len(missing) == 1 else "refuse"
            line.append(f"  (not supported yet: {', '.join(missing)} {verb} it)", style="bold yellow")
        line.append(f"  from {cfg.family_source}", style="dim")
        console.print(line)
    if len(cfg.files) > 1:
        console.print(Text("files: " + ", ".join(cfg.files), style="dim"))

    data = show_data(cfg)
    table = Table(title=f"canonical options ({len(cfg.options)})", title_justify="left", expand=False)
    table.add_column("option", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold", min_width=12)
    table.add_column("line", style="dim", no_wrap=True)
    table.add_column("how", style="dim", overflow="fold", min_width=10)
    for name, setting in cfg.options.items():
        o = setting.prov.origin
        how = setting.prov.kind
        conversion = data["provenance"][name]["conversion"]  # credentials already redacted there
        if conversion:
            how += f": {conversion}"
        elif o is not None and o.key and o.key.lstrip("-") != name:
            how += f" from {o.key}"
        table.add_row(Text(name), Text(json.dumps(data["options"][name], ensure_ascii=False)),
                      Text(_where(o, cfg.source)), Text(how))
    if cfg.options:
        console.print(table)

    if cfg.general or cfg.datasets:
        ds_table = Table(title="dataset", title_justify="left")
        ds_table.add_column("level", no_wrap=True)
        ds_table.add_column("parameters")
        if data["general"]:
            ds_table.add_row("general", Text(json.dumps(data["general"], ensure_ascii=False)))
        for di, ds in enumerate(data["datasets"]):
            ds_table.add_row(f"datasets[{di}]", Text(json.dumps(ds["params"], ensure_ascii=False)))
            for si, sub in enumerate(ds["subsets"]):
                ds_table.add_row(f"  subsets[{si}]", Text(json.dumps(sub, ensure_ascii=False)))
        console.print(ds_table)

    for title, rows in (("unknown keys", data["unknown_keys"]), ("front-end-only keys", data["frontend_only"])):
        if rows:
            t = Table(title=f"{title} ({len(rows)})", title_justify="left")
            t.add_column("key", style="yellow", no_wrap=True)
            t.add_column("value")
            t.add_column("line", style="dim")
            t.add_column("why", style="dim")
            for r in rows[:MAX_TEXT_ROWS]:
                t.add_row(Text(r["key"]), Text(json.dumps(r["value"], ensure_ascii=False)[:80]),
                          Text(str(r["line"] or "")), Text(r["reason"]))
            console.print(t)
            if len(rows) > MAX_TEXT_ROWS:
                console.print(Text(f"... and {len(rows) - MAX_TEXT_ROWS} more {title} (all of them: --format json)",
                                   style="dim"))
    if data["notes"]:
        console.print(Text(f"notes ({len(data['notes'])})", style="bold"))
        for n in data["notes"][:MAX_TEXT_ROWS]:
            where = f"{os.path.basename(n['file'])}:{n['line']}: " if n["file"] and n["line"] else ""
            line = Text("  ")
            line.append(n["code"], style="magenta").append(printable(clip(f"  {where}{n['message']}")))
            console.print(line)
        if len(data["notes"]) > MAX_TEXT_ROWS:
            console.print(Text(f"  ... and {len(data['notes']) - MAX_TEXT_ROWS} more notes (all of them: "
                               "--format json)", style="dim"))
    if data["invalid"]:
        t = Table(title=f"invalid values ({len(data['invalid'])}): sd-scripts would refuse this config",
                  title_justify="left", title_style="bold red")
        t.add_column("key", style="red", no_wrap=True)
        t.add_column("value")
        t.add_column("line", style="dim")
        t.add_column("why")
        for r in data["invalid"][:MAX_TEXT_ROWS]:
            t.add_row(Text(str(r["key"])), Text(json.dumps(r["value"], ensure_ascii=False)[:80]),
                      Text(_where_line(r, cfg.source)), Text(r["reason"]))
        console.print(t)


def _where_line(row: dict[str, Any], source: str) -> str:
    name = "" if row.get("file") in (None, source) else os.path.basename(row["file"])
    line = row.get("line")
    return f"{name}:{line}" if name and line else (name or str(line or ""))


@click.command(name="show")
@click.argument("config", type=click.Path(dir_okay=True, path_type=str))
@click.option("--dialect", type=click.Choice(DIALECTS), default=None,
              help="Read CONFIG as this dialect instead of detecting it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "toml"]), default="text", show_default=True,
              help="text: tables; json: one object (stable contract); toml: sd-scripts --config_file.")
def command(config: str, dialect: str | None, fmt: str) -> None:
    """Detect CONFIG's dialect and show its canonical options with provenance.

    Every value is shown in sd-scripts' own option names, with where it came from (file:line, the key
    as written) and how it was converted. Credentials are redacted.

    \b
    Examples:
      lora-compat show "presets/lora/SDXL - LoRA adafactor v1.0.json"
      lora-compat show train.bat                     # a pasted sd-scripts command line
      lora-compat show config.toml --format json | jq .options.network_dim
      lora-compat show old.json --format toml > config_file.toml
      lora-compat show settings.toml --dialect derrian-toml
    """
    from lora_compat.config.load import load_config

    cfg = load_config(config, dialect=dialect)
    if fmt == "json":
        click.echo(json.dumps(show_data(cfg), indent=2, ensure_ascii=False))
    elif fmt == "toml":
        click.echo(sd_scripts_toml(cfg), nl=False)
    else:
        _render_text(cfg)
    if cfg.invalid:
        # shown and marked above (json: "invalid"); the exit status says sd-scripts would refuse the config
        bad = cfg.invalid[0]
        from lora_compat.errors import located

        more = f" (and {len(cfg.invalid) - 1} more)" if len(cfg.invalid) > 1 else ""
        from lora_compat.config.load import printable
        from lora_compat.errors import clip_message

        click.echo("error: " + clip_message(printable(located(f"{bad.reason}{more}", file=bad.origin.file,
                                                              line=bad.origin.line, key=bad.origin.key))), err=True)
        sys.exit(1)
