"""``lora-compat explain CODE|NAME|NOTE|KEY`` and ``explain --list``: rule pages (like ``ruff rule``), reader notes,
groups and option meanings."""

from __future__ import annotations

import json
import re
import sys

import click

from lora_compat.errors import UserError

_CODE_LIKE = re.compile(r"^LC\d{3}$", re.I)


# ignore_unknown_options: `explain --network_dim` names an sd-scripts option; it is the WHAT, not ours
@click.command(name="explain", context_settings={"ignore_unknown_options": True})
@click.argument("what", required=False)
@click.option("--list", "list_rules", is_flag=True, help="List every rule: code, name, groups, severity, summary.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(what: str | None, list_rules: bool, fmt: str) -> None:
    """Explain a lint rule (LC201, alpha-default-one), a reader note (kohya-gui-other-architecture), a group
    (group:security) or an option/legacy key (keep_tokens, shuffle_captions).

    \b
    Examples:
      lora-compat explain LC201
      lora-compat explain alpha-default-one
      lora-compat explain network.alpha_default_one      # the dotted name
      lora-compat explain kohya-gui-other-architecture   # a reader note: what it means, which rule reports it
      lora-compat explain network_alpha                  # an sd-scripts option
      lora-compat explain shuffle_captions               # a Derrian key: its sd-scripts name and meaning
      lora-compat explain LC3                            # every rule of a code family
      lora-compat explain group:security                 # every rule of a group
      lora-compat explain --list --format json
    """
    from lora_compat.lint.registry import GROUP_PREFIX, GROUPS, all_rules, matches, rules_for

    family = what.strip().upper() if what else ""
    group = what.strip().lower()[len(GROUP_PREFIX):] if what and what.strip().lower().startswith(GROUP_PREFIX) else None
    if what and len(family) == 3 and family[:2] == "LC" and family[2].isdigit():
        list_rules = True            # `explain LC3`: the rules of one family
    if group is not None:
        if group not in GROUPS:
            raise UserError(f"unknown group {group!r} (groups: {', '.join(GROUPS)})")
        list_rules = True
    if list_rules:
        rules = all_rules()
        if group is not None:
            rules = [r for r in rules if matches(r, f"{GROUP_PREFIX}{group}")]
        elif family and len(family) == 3:
            rules = [r for r in rules if r.code.startswith(family)]
            if not rules:
                raise UserError(f"no rule family {what!r} (families: LC1 ... LC6)")
        _print_list(rules, fmt)
        return
    if not what:
        raise UserError("give a rule code/name, a reader note, group:NAME or an option name, or --list")
    found = rules_for(what)
    if len(found) == 1:
        rule = found[0]
        if fmt == "json":
            click.echo(json.dumps(rule.to_json() | {"help_uri": _help_uri(rule)}, indent=2, ensure_ascii=False))
        else:
            _print_rule(rule)
        return
    if found:                        # a retired code that was split (LC605): its successors
        if fmt == "json":
            click.echo(json.dumps({"alias": what, "rules": [_brief(r) for r in found]}, indent=2,
                                  ensure_ascii=False))
            return
        click.echo(f"{what} is an old code or name; it now selects these rules:")
        _print_list(found, fmt)
        return
    note = _note(what)
    if note is not None:
        _print_note(*note, fmt=fmt)
        return
    if _CODE_LIKE.match(what.strip()):
        raise UserError(f"unknown rule {what.strip().upper()!r} (`lora-compat explain --list` lists the rules)")
    from lora_compat.config.option_explain import explain_option, explain_option_data

    if fmt == "json":
        click.echo(json.dumps(explain_option_data(what), indent=2, ensure_ascii=False, default=str))
        return
    renderable = explain_option(what)        # raises UserError (exit 2) for unknown names
    from rich.console import Console

    Console(highlight=False).print(renderable)


def _brief(rule) -> dict:
    return {"code": rule.code, "name": rule.slug(), "dotted_name": rule.name, "groups": list(rule.groups),
            "severity": rule.severity, "fixable": rule.fixable, "summary": rule.summary}


def _help_uri(rule) -> str:
    from lora_compat.lint.reporters import rule_help_uri

    return rule_help_uri(rule)


def _print_list(rules, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps({"rules": [_brief(r) for r in rules]}, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None)
    for col in ("code", "name", "groups", "severity", "fix", "summary"):
        table.add_column(col)
    for r in rules:
        table.add_row(r.code, r.name, ",".join(r.groups), r.severity, "*" if r.fixable else "", r.summary)
    Console(highlight=False, soft_wrap=True).print(table)


def _note(what: str):
    """(note code, its description, the rule that reports it) for a reader note code, else None."""
    from lora_compat.config.notes import NOTE_CODES
    from lora_compat.lint.registry import note_homes

    code = what.strip().lower()
    home = note_homes().get(code)
    if home is None:
        return None
    return code, NOTE_CODES.get(code, ""), home


def _print_note(code: str, description: str, rule, *, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps({"note": code, "description": description, "rule": rule.to_json()
                               | {"help_uri": _help_uri(rule)}}, indent=2, ensure_ascii=False))
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    console.print(f"[bold]{code}[/] — a note recorded by the config reader")
    console.print(description)
    console.print()
    console.print(f"Reported by [bold]{rule.code}[/] {rule.slug()}:")
    console.print()
    _print_rule(rule, console=console)


def _print_rule(rule, console=None) -> None:
    from rich.console import Console
    from rich.markdown import Markdown

    from lora_compat.lint.docs import rule_page_lines

    console = console or Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    sev = {"error": "red", "warning": "yellow"}.get(rule.severity, "cyan")
    fixable = ", fixable" if rule.fixable else ""
    console.print(f"[bold]{rule.code}[/] {rule.slug()}  ([{sev}]{rule.severity}[/]{fixable}) — {rule.family()}")
    console.print(Markdown("\n".join(rule_page_lines(rule, anchors=False))))
    console.print(f"Docs: {_help_uri(rule)}")
