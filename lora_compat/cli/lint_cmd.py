"""``lora-compat lint PATH...``: coded findings with explanations (thin: parse options, call, render)."""

from __future__ import annotations

import os
import sys

import click

from lora_compat.config.dialects import DIALECTS
from lora_compat.errors import UserError


def _split(values: tuple[str, ...]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


@click.command(name="lint")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "--output-format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]),
              default="text", show_default=True, help="Output format (json/sarif are stable contracts).")
@click.option("--select", multiple=True, metavar="CODES",
              help="Only these rules: codes, prefixes (LC3), names, old codes or group:NAME (group:security); "
                   "comma-separated or repeated.")
@click.option("--ignore", multiple=True, metavar="CODES",
              help="Skip these rules (codes, prefixes, names, old codes, group:NAME).")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="error", show_default=True,
              help="Exit 1 when a finding of this severity or higher remains.")
@click.option("--fix", is_flag=True, help="Write safe fixes to <name>.fixed.<ext> (or -o / --in-place).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="With --fix and one file: where to write.")
@click.option("--in-place", is_flag=True, help="With --fix: rewrite the file itself, keeping <file>.bak.")
@click.option("--force", is_flag=True, help="With --fix: replace an existing fixed copy (-o or <name>.fixed.<ext>).")
@click.option("--dialect", type=click.Choice(DIALECTS), default=None,
              help="Force the input dialect (skips detection).")
@click.option("--skip-non-configs", is_flag=True,
              help="Skip files that parse but are not training configs (for pre-commit on whole repos).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even with findings (load/usage errors still exit 2).")
@click.option("--statistics", is_flag=True, help="Text format: also print how often each rule fired.")
def command(paths: tuple[str, ...], fmt: str, select: tuple[str, ...], ignore: tuple[str, ...], fail_on: str,
            fix: bool, output: str | None, in_place: bool, force: bool, dialect: str | None,
            skip_non_configs: bool, exit_zero: bool, statistics: bool) -> None:
    """Lint training configs (files, folders, globs): findings point at the original file, key and line.

    Exit codes: 0 nothing at or above --fail-on, 1 findings, 2 usage error or a file that could not be loaded
    (the other files are still linted and reported).

    \b
    Examples:
      lora-compat lint my_preset.json
      lora-compat lint configs/ "presets/**/*.toml" --fail-on warning
      lora-compat lint config.toml --select LC2,LC3 --ignore group:frontend_quirks
      lora-compat lint . --select group:security
      lora-compat lint . --skip-non-configs --format sarif > lint.sarif
      lora-compat lint old.json --fix              # writes old.fixed.json
    """
    from lora_compat.lint.registry import select_rules, unknown_selectors
    from lora_compat.lint.reporters import render
    from lora_compat.lint.runner import expand_paths, lint_paths

    sel, ign = _split(select), _split(ignore)
    bad = unknown_selectors(sel + ign)
    if bad:
        raise UserError(f"unknown rule selector(s): {', '.join(bad)} (see `lora-compat explain --list`)")
    if (output or in_place) and not fix:
        raise UserError("-o/--output and --in-place need --fix")
    if output and in_place:
        raise UserError("use either -o/--output or --in-place, not both")
    rules = select_rules(sel, ign)
    files = expand_paths(paths)
    if output and len(files) != 1:
        raise UserError("-o/--output needs exactly one input file")
    if output and _same_file(files[0], output):
        raise UserError("-o names the input itself; use --in-place to rewrite it (a .bak copy is kept)",
                        file=output)
    if output and os.path.lexists(output) and not force:
        raise UserError("already exists; pass --force to replace it", file=output)

    show_progress = fmt == "text" and len(files) >= 5 and sys.stderr.isatty()
    if show_progress:
        from rich.console import Console
        from rich.progress import Progress

        with Progress(transient=True, console=Console(stderr=True)) as progress:
            task = progress.add_task("linting", total=len(files))
            report = lint_paths(files, rules, dialect=dialect, skip_non_configs=skip_non_configs,
                                progress=lambda _path: progress.advance(task))
    else:
        report = lint_paths(files, rules, dialect=dialect, skip_non_configs=skip_non_configs)

    if fix:
        _apply(report, output=output, in_place=in_place, force=force)
    render(report, fmt, sys.stdout)
    if statistics and fmt == "text":
        _print_statistics(report)
    code = report.exit_code(fail_on)
    sys.exit(0 if (exit_zero and code == 1) else code)


def _print_statistics(report) -> None:
    """ruff-style ``--statistics``: count, code, name, per rule that fired."""
    names = {r.code: r.slug() for r in report.rules}
    for code, n in sorted(report.summary()["by_code"].items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"{n:>6}  {code}  {names.get(code, '')}")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _apply(report, *, output: str | None, in_place: bool, force: bool = False) -> None:
    """Apply the safe fixes of every file; credentials are always blanked in what is written. An existing fixed
    copy is replaced only with ``force``; a file that cannot be written is reported as that file's error."""
    import shutil

    from lora_compat.errors import UserError
    from lora_compat.lint.fixes import apply_fixes, credential_fixes, fixed_name, write_atomic
    from lora_compat.lint.registry import get_rule
    from lora_compat.lint.runner import lint_config

    same = _same_file

    for r in report.results:
        if r.error or r.skipped or r.cfg is None:
            continue
        # only fixes located in this file (not in a dataset config it references)
        fixable = [f for f in r.findings if f.fix is not None and same(f.fix.file, r.path)]
        if not fixable:
            continue
        secret_rule = get_rule("LC501")
        extra = [fx for fx in (credential_fixes(lint_config(r.cfg, [secret_rule])) if secret_rule else [])
                 if same(fx.file, r.path)]
        try:
            text = apply_fixes(r.path, [f.fix for f in fixable] + extra)
        except UserError as err:      # this file stays unchanged; the others are still fixed and reported
            r.error = str(err)
            continue
        target = r.path if in_place else (output or fixed_name(r.path))
        if not in_place and os.path.lexists(target) and not force:
            r.error = f"{target}: already exists; pass --force to replace it"
            continue
        try:
            if in_place:
                shutil.copy2(r.path, r.path + ".bak")
            write_atomic(target, text)
        except OSError as exc:  # the .bak copy (the atomic writer reports its own failures as UserError)
            r.error = str(UserError(f"cannot write: {exc.strerror or exc}", file=r.path + ".bak"))
            continue
        except UserError as err:
            r.error = str(err)
            continue
        r.fixed = fixable
        r.fixed_output = target
