"""``lora-compat explain CODE|KEY`` and ``explain --list``: rule pages (like ``ruff rule``) and option meanings."""

from __future__ import annotations

import json
import sys

import click

from lora_compat.errors import UserError


# ignore_unknown_options: `explain --network_dim` names an sd-scripts option; it is the WHAT, not ours
@click.command(name="explain", context_settings={"ignore_unknown_options": True})
@click.argument("what", required=False)
@click.option("--list", "list_rules", is_flag=True, help="List every rule: code, name, severity, summary.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(what: str | None, list_rules: bool, fmt: str) -> None:
    """Explain a lint rule (LC201, alpha-default-one) or an option/legacy key (keep_tokens, shuffle_captions).

    \b
    Examples:
      lora-compat explain LC201
      lora-compat explain alpha-default-one
      lora-compat explain network_alpha             # an sd-scripts option
      lora-compat explain shuffle_captions          # a Derrian key: its sd-scripts name and meaning
      lora-compat explain LC3                       # every rule of a family
      lora-compat explain --list --format json
    """
    from lora_compat.lint.registry import all_rules, get_rule

    family = what.strip().upper() if what else ""
    if what and len(family) == 3 and family[:2] == "LC" and family[2].isdigit():
        list_rules = True            # `explain LC3`: the rules of one family
    if list_rules:
        rules = [r for r in all_rules() if not family or len(family) != 3 or r.code.startswith(family)]
        if not rules:
            raise UserError(f"no rule family {what!r} (families: LC1 ... LC6)")
        if fmt == "json":
            click.echo(json.dumps({"rules": [_brief(r) for r in rules]}, indent=2, ensure_ascii=False))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(show_header=True, header_style="bold", box=None)
        for col in ("code", "name", "severity", "fix", "summary"):
            table.add_column(col)
        for r in rules:
            table.add_row(r.code, r.name, r.severity, "*" if r.fixable else "", r.summary)
        Console(highlight=False, soft_wrap=True).print(table)
        return
    if not what:
        raise UserError("give a rule code/name or an option name, or --list")
    rule = get_rule(what)
    if rule is not None:
        if fmt == "json":
            click.echo(json.dumps(rule.to_json() | {"help_uri": _help_uri(rule)}, indent=2, ensure_ascii=False))
        else:
            _print_rule(rule)
        return
    from lora_compat.config.option_explain import explain_option, explain_option_data

    if fmt == "json":
        click.echo(json.dumps(explain_option_data(what), indent=2, ensure_ascii=False, default=str))
        return
    renderable = explain_option(what)        # raises UserError (exit 2) for unknown names
    from rich.console import Console

    Console(highlight=False).print(renderable)


def _brief(rule) -> dict:
    return {"code": rule.code, "name": rule.name, "severity": rule.severity, "fixable": rule.fixable,
            "summary": rule.summary}


def _help_uri(rule) -> str:
    from lora_compat.lint.reporters import rule_help_uri

    return rule_help_uri(rule)


def _print_rule(rule) -> None:
    from rich.console import Console
    from rich.markdown import Markdown

    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    console.print(f"[bold]{rule.code}[/] {rule.name}  ([{'red' if rule.severity == 'error' else 'yellow'}]"
                  f"{rule.severity}[/]{', fixable' if rule.fixable else ''}) — {rule.family()}")
    console.print(rule.summary)
    console.print()
    console.print(Markdown(rule.explanation()))
    console.print()
    if rule.reference:
        console.print(f"Reference: {rule.reference}")
    console.print(f"Docs: {_help_uri(rule)}")
