"""``lora-compat migrate CONFIG --to native|sd-scripts|kohya-gui|command-line -o OUT``."""

from __future__ import annotations

import json

import click

from lora_compat.migrate.report import LOSS_KINDS, MigrationReport


@click.command(name="migrate")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--to", "to", type=click.Choice(["native", "sd-scripts", "kohya-gui", "command-line"]), required=True,
              help="Target format (command-line: an sh script running `accelerate launch <script> --option ...`).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), required=True,
              help="Output file (sd-scripts: the --config_file TOML; a <stem>_dataset.toml is written beside it "
                   "when there are datasets).")
@click.option("--strict", is_flag=True, help="Fail (exit 1, nothing written) if any key would be lost.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--dialect", default=None, help="Force the input dialect instead of detecting it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Report format.")
@click.option("--images", "images", multiple=True, metavar="FOLDER=COUNT",
              help="Image count of a folder that is not on this machine (a kohya '10_name' sub-folder by name, or a "
                   "subset image_dir), as for `plan`: front-ends that derived the length or warmup from their own "
                   "image count (kohya_ss GUI epoch and percent warmup, Derrian ratios) are resolved exactly; "
                   "repeatable.")
def command(config: str, to: str, output: str, strict: bool, force: bool, dialect: str | None, fmt: str,
            images: tuple[str, ...]) -> None:
    """Migrate CONFIG to another format and report what happened to every key.

    Each key is reported as kept, renamed, converted (with the arithmetic), derived, default, frontend-quirk,
    dropped (why) or no-equivalent (why). Credentials are never written.

    Exit codes: 0 written, 1 --strict and something would be lost (nothing written), 2 bad input.

    \b
    Examples:
      lora-compat migrate old_preset.json --to native -o my_lora.toml
      lora-compat migrate my_lora.toml --to sd-scripts -o run.toml   # + run_dataset.toml
      lora-compat migrate args.json --to kohya-gui -o gui.json --strict
      lora-compat migrate cmd.sh --to native -o new.toml --force --format json
      lora-compat migrate old.json --to sd-scripts -o run.toml --images "10_sks dog=25"
      lora-compat migrate flux_preset.json --to command-line -o train_flux.sh
    """
    from lora_compat.config.kohya_folder import parse_image_counts
    from lora_compat.migrate.run import migrate_file

    report = migrate_file(config, to, output, force=force, strict=strict, dialect=dialect,
                          image_counts=parse_image_counts(images))
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2, default=str))
        return
    _render_text(report)


def _render_text(report: MigrationReport) -> None:
    from rich.console import Console
    from rich.markup import escape as rich_escape

    from lora_compat.config.load import printable
    from lora_compat.errors import clip_message

    def escape(text: str) -> str:
        # a value can be megabytes (the report quotes it): cut each line, escape control characters and markup
        return rich_escape(printable(clip_message(text)))

    console = Console(highlight=False, soft_wrap=True)
    width = max((len(e.kind) for e in report.entries), default=4)
    for e in report.entries:
        src = e.source_key or "(none)"
        if e.line:
            src += f":{e.line}"
        line = f"{e.kind:<{width}}  {src} -> {e.target_key or '(not written)'}"
        if e.detail:
            line += f"  [{e.detail}]"
        style = "red" if e.loss else ("yellow" if e.kind in LOSS_KINDS else "")
        console.print(escape(line), style=style or None)
    counts = ", ".join(f"{n} {k}" for k, n in report.counts().items() if n)
    console.print(escape(f"{report.source} ({report.dialect}) -> {report.target}: {counts}"))
    for n in report.notes:
        console.print(escape(f"note {n['code']}: {n['message']}"))
    for path in report.outputs:
        console.print(escape(f"wrote {path}"))
    if report.losses:
        console.print(f"{len(report.losses)} key(s) could not be carried over (marked above)", style="yellow")
