"""Interchangeable reporters for a :class:`LintReport`: text (rich), JSON, SARIF 2.1.0, GitHub annotations.

Every machine format is a stable contract (docs/cli.md, section lint): fields are only ever added.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, TextIO

from lora_compat import __version__
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule
from lora_compat.lint.runner import LintReport

# Rule pages: docs/rules.md in the repository (anchors are "<code>-<name>").
DOCS_URI = "https://github.com/lora-compat/lora-compat/blob/main/docs/rules.md"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_GITHUB_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}
FORMATS = ("text", "json", "sarif", "github")


def rule_help_uri(rule: type[Rule]) -> str:
    return f"{DOCS_URI}#{rule.anchor()}"


def _display_path(path: str) -> str:
    """Relative to the working directory when inside it (stable SARIF/GitHub paths), POSIX separators."""
    try:
        rel = os.path.relpath(path)
        if not rel.startswith(".."):
            path = rel
    except ValueError:     # other drive on Windows
        pass
    return path.replace(os.sep, "/")


# -- JSON ---------------------------------------------------------------------------------------------

def report_json(report: LintReport) -> dict[str, Any]:
    """The ``--format json`` object: ``{"findings": [...], "errors": [...], "skipped": [...], "summary": {...}}``."""
    findings = []
    for r in report.results:
        fixed = {id(f) for f in r.fixed}
        for f in r.findings:
            d = f.to_json()
            d["file"] = _display_path(f.file)
            d["fixed"] = id(f) in fixed
            findings.append(d)
    return {
        "findings": findings,
        "errors": [{"file": _display_path(r.path), "message": r.error} for r in report.errors],
        "skipped": [{"file": _display_path(r.path), "reason": r.skipped} for r in report.results if r.skipped],
        "files": [{"file": _display_path(r.path), "dialect": r.dialect, "era": r.era,
                   "findings": len(r.findings), "error": r.error is not None, "skipped": r.skipped is not None,
                   "fixed_output": r.fixed_output}
                  for r in report.results],
        "summary": report.summary(),
    }


# -- SARIF --------------------------------------------------------------------------------------------

def _sarif_rule(rule: type[Rule]) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.slug(),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.explanation().split("\n\n", 1)[0]},
        "help": {"text": rule.explanation(), "markdown": rule.explanation()},
        "helpUri": rule_help_uri(rule),
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
        "properties": {"tags": [rule.family(), *rule.groups, rule.severity], "problem.severity": rule.severity,
                       "precision": "high"},
    }


def _fingerprint(f: Finding) -> str:
    raw = f"{f.code}|{_display_path(f.file)}|{f.key or ''}|{f.message}"
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:32]  # non-UTF-8 file names too


def _sarif_uri(path: str) -> str:
    """SARIF ``artifactLocation.uri`` is a URI reference (SARIF 2.1.0 §3.4.3): "SDXL - LoRA.json" must be
    written "SDXL%20-%20LoRA.json" or code-scanning uploads cannot map the result to the file."""
    from urllib.parse import quote

    # surrogateescape: a file name that is not UTF-8 (bytes kept as lone surrogates) becomes its %XX bytes
    return quote(_display_path(path), safe="/:", errors="surrogateescape")


def report_sarif(report: LintReport) -> dict[str, Any]:
    """A SARIF 2.1.0 log: every selected rule in ``tool.driver.rules`` (so fixed alerts close), one result per
    finding."""
    rules = sorted(report.rules, key=lambda r: r.code)
    index = {r.code: i for i, r in enumerate(rules)}
    results = []
    for f in report.findings:
        loc: dict[str, Any] = {"artifactLocation": {"uri": _sarif_uri(f.file)}}
        if f.line:
            region: dict[str, Any] = {"startLine": f.line}
            if f.col:
                region["startColumn"] = f.col
            loc["region"] = region
        result: dict[str, Any] = {
            "ruleId": f.code,
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message + (f" (key: {f.key})" if f.key else "")},
            "locations": [{"physicalLocation": loc}],
            "partialFingerprints": {"loraCompatFinding/v1": _fingerprint(f)},
        }
        if f.code in index:
            result["ruleIndex"] = index[f.code]
        results.append(result)
    notifications = [{"level": "error", "message": {"text": r.error},
                      "locations": [{"physicalLocation": {"artifactLocation": {"uri": _sarif_uri(r.path)}}}]}
                     for r in report.errors]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "lora-compat", "version": __version__, "semanticVersion": __version__,
                "informationUri": DOCS_URI, "rules": [_sarif_rule(r) for r in rules],
            }},
            "invocations": [{"executionSuccessful": not report.errors,
                             "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    }


# -- GitHub Actions annotations --------------------------------------------------------------------------

def _gh_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(s: str) -> str:
    return _gh_data(s).replace(":", "%3A").replace(",", "%2C")


def report_github(report: LintReport) -> str:
    """One ``::error file=…,line=…,title=…::message`` line per finding (``notice`` for info)."""
    lines = []
    for f in report.findings:
        props = [f"file={_gh_prop(_display_path(f.file))}"]
        if f.line:
            props.append(f"line={f.line}")
            if f.col:
                props.append(f"col={f.col}")
        props.append(f"title={_gh_prop(f'{f.code} {f.name}')}")
        msg = (f"{f.key}: " if f.key else "") + f.message + f" (lora-compat explain {f.note or f.code})"
        lines.append(f"::{_GITHUB_COMMAND[f.severity]} {','.join(props)}::{_gh_data(msg)}")
    for r in report.errors:
        lines.append(f"::error file={_gh_prop(_display_path(r.path))},title=lora-compat::{_gh_data(r.error or '')}")
    return "\n".join(lines) + ("\n" if lines else "")


# -- text (rich) ------------------------------------------------------------------------------------------

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def report_text(report: LintReport, out: TextIO, *, color: bool | None = None) -> None:
    """Human output grouped by file: severity, code, file:line, key, message, and the explain hint."""
    from rich.console import Console
    from rich.markup import escape as escape_markup

    from lora_compat.config.load import printable

    def escape(text: str) -> str:   # no rich markup and no terminal control sequences from config values
        return escape_markup(printable(text))

    # color=None: rich decides (a terminal, FORCE_COLOR) and honours NO_COLOR; never pass no_color=False
    console = Console(file=out, highlight=False, soft_wrap=True, force_terminal=color,
                      no_color=True if color is False else None)
    for r in report.results:
        path = _display_path(r.path)
        if r.error:
            console.print(f"[bold]{escape(path)}[/]")
            console.print(f"  [bold red]load error[/] {escape(r.error)}")
            continue
        if r.skipped or not r.findings:
            continue
        era = f" {escape(r.era)}" if r.era else ""
        console.print(f"[bold]{escape(path)}[/]" + (f" [dim]({escape(r.dialect or '')}{era})[/]" if r.dialect else ""))
        fixed = {id(f) for f in r.fixed}
        for f in r.findings:
            where = f"{_display_path(f.file)}:{f.line}" if f.line else _display_path(f.file)
            mark = " [green]\\[fixed][/]" if id(f) in fixed else (" [dim]\\[*][/]" if f.fix else "")
            key = f"  [bold]{escape(f.key)}[/]" if f.key else ""
            console.print(f"  [{_STYLE[f.severity]}]{f.severity:<7}[/] {f.code}  {escape(where)}{key}  "
                          f"{escape(f.message)}{mark}")
            console.print(f"           [dim]-> lora-compat explain {f.note or f.code}[/]")
        if r.fixed_output:
            console.print(f"  [green]wrote {len(r.fixed)} fix(es) to {escape(_display_path(r.fixed_output))}[/]")
    s = report.summary()
    skipped = f", {s['skipped']} skipped (not training configs)" if s["skipped"] else ""
    if s["findings"] == 0 and not s["load_errors"]:
        console.print(f"[green]All checks passed[/] ({s['files']} file{'s' if s['files'] != 1 else ''}{skipped}).")
    else:
        parts = [f"{s['error']} error(s)", f"{s['warning']} warning(s)", f"{s['info']} info"]
        console.print(f"Found {s['findings']} finding(s): {', '.join(parts)} in {s['files_with_findings']} of "
                      f"{s['files']} file(s){skipped}.")
        if s["load_errors"]:
            console.print(f"[bold red]{s['load_errors']} file(s) could not be loaded.[/]")
        unfixed = s["fixable"] - s["fixed"]
        if unfixed > 0:
            console.print(f"[dim]\\[*] {unfixed} fixable with --fix.[/]")


def render(report: LintReport, fmt: str, out: TextIO, *, color: bool | None = None) -> None:
    """Write ``report`` to ``out`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        out.write(json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "sarif":
        out.write(json.dumps(report_sarif(report), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "github":
        out.write(report_github(report))
    else:
        report_text(report, out, color=color)
