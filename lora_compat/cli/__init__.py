"""The thin face: Click group whose commands are imported lazily (start-up stays fast).

Each command lives in its own module ``lora_compat/cli/<name>_cmd.py`` exposing a Click command named
``command``. Register it in ``COMMANDS`` below; nothing else here changes when a command is added.
"""

from __future__ import annotations

import importlib
import sys

import click

from lora_compat import __version__

# name -> (module, one-line help shown in `lora-compat --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "show": ("lora_compat.cli.show_cmd", "Detect a config's dialect and show its canonical options."),
    "lint": ("lora_compat.cli.lint_cmd", "Lint configs: coded findings with explanations."),
    "explain": ("lora_compat.cli.explain_cmd", "Explain a rule code or an option."),
    "migrate": ("lora_compat.cli.migrate_cmd", "Migrate a config to native, sd-scripts or kohya-gui format."),
    "plan": ("lora_compat.cli.plan_cmd", "Show what the training engine will run for a config."),
    "train": ("lora_compat.cli.train_cmd", "Train a LoRA from any supported config."),
    "demo": ("lora_compat.cli.demo_cmd", "Offline end-to-end demo: lint, migrate, train, convert, inspect."),
    "convert": ("lora_compat.cli.convert_cmd", "Convert LoRA weights between kohya, PEFT and diffusers layouts."),
    "inspect": ("lora_compat.cli.inspect_cmd", "Inspect a LoRA file or PEFT folder."),
    "check": ("lora_compat.cli.check_cmd", "Pre-flight: will every module of a LoRA apply in a consumer?"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        command: click.Command = importlib.import_module(COMMANDS[name][0]).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


EPILOG = """\b
Examples:
  lora-compat show my_preset.json
  lora-compat lint configs/ --format sarif > lint.sarif
  lora-compat explain LC201        lora-compat explain keep_tokens
  lora-compat migrate old.json --to native -o new.toml
  lora-compat plan new.toml
  lora-compat train new.toml --output out/
  lora-compat convert my_lora.safetensors peft_dir --to peft
  lora-compat inspect my_lora.safetensors
  lora-compat demo --output demo-out
"""


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lora-compat")
def cli() -> None:
    """Make kohya-era LoRA configs and weights portable and trustworthy."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point. UserError -> one line on stderr, exit 2, never a traceback."""
    from lora_compat.config.secrets import redacting_output

    with redacting_output():   # credentials never leave the process, whichever command prints them
        _main(argv)


def _main(argv: list[str] | None) -> None:
    from lora_compat.atomic import Terminated, sigterm_raises
    from lora_compat.errors import UserError

    try:
        with sigterm_raises():  # SIGTERM cleans up like Ctrl-C: no half-written output, no temp files left
            cli.main(args=argv, prog_name="lora-compat", standalone_mode=False)
    except UserError as err:
        from lora_compat.errors import clip_message

        click.echo(f"error: {clip_message(str(err))}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, Terminated):  # click wraps KeyboardInterrupt (and so SIGTERM) into Abort
            click.echo("terminated", err=True)
            sys.exit(143)
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(2 if err.exit_code == 2 else err.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Terminated:
        click.echo("terminated", err=True)
        sys.exit(143)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
