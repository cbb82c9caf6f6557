"""``lora-compat convert SRC DST --to kohya|peft|diffusers``: exact LoRA conversion at copy speed (no torch)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from lora_compat.errors import UserError


def _report_json(rep) -> dict:
    out = {"src": str(rep.src), "dst": str(rep.dst), "from": rep.src_layout, "to": rep.to, "arch": rep.arch,
           "algo": rep.algo, "modules": rep.modules, "parts": rep.parts, "bytes_copied": rep.bytes_copied,
           "bytes_rewritten": rep.bytes_rewritten, "outputs": [str(p) for p in rep.outputs], "notes": rep.notes,
           "written": rep.written}
    if rep.verify is not None:
        out["verify"] = rep.verify.to_json()
    return out


def _dumps(obj: object) -> str:
    # allow_nan=False: bare NaN/Infinity is not JSON; every number here is finite by construction
    return json.dumps(obj, indent=2, allow_nan=False)


def _is_folder_arg(raw: str) -> bool:
    """DST written with a trailing separator names a folder, like ``cp FILE DIR/``."""
    return raw.endswith(tuple(s for s in ("/", os.sep, os.altsep) if s))


def _into_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserError("DST ends with a separator (a folder) but is a file", file=str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder: {exc.strerror or exc}", file=str(folder)) from None


EXAMPLES = """\b
Examples:
  lora-compat convert my_lora.safetensors my_lora_peft --to peft
  lora-compat convert my_lora_peft my_lora.safetensors --to kohya --verify
  lora-compat convert sdxl_lora.safetensors out.safetensors --to diffusers --dtype fp16
  lora-compat convert flux_lora.safetensors flux_comfy.safetensors --to comfyui
  lora-compat convert sd3_kohya.safetensors sd3_diffusers.safetensors --to diffusers --verify
  lora-compat convert loras/ converted/ --to peft --format json   # a whole folder
  lora-compat convert my_lora.safetensors out/ --to kohya   # DST ending in / is a folder: out/my_lora.safetensors
"""


@click.command(name="convert", epilog=EXAMPLES)
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path())
@click.option("--to", "to", type=click.Choice(["kohya", "peft", "diffusers", "comfyui", "ai-toolkit"]), required=True,
              help="Output layout: kohya .safetensors, PEFT folder, diffusers pipeline file; FLUX.1/Chroma and "
                   "SD3/SD3.5 also ComfyUI-native (diffusion_model.) and ai-toolkit (baked, no alpha).")
@click.option("--arch", type=click.Choice(["auto", "sd1", "sd2", "sdxl", "flux1", "chroma", "sd3"]), default="auto",
              show_default=True,
              help="Base model family (auto: from module names and tensor shapes).")
@click.option("--dtype", type=click.Choice(["keep", "fp16", "bf16", "fp32"]), default="keep", show_default=True,
              help="Cast adapter tensors (alphas stay float32).")
@click.option("--bake-scale", is_flag=True, help="Multiply alpha/rank into the weights and write alpha = rank.")
@click.option("--drop-t5", is_flag=True, help="FLUX, SD3: leave T5-XXL (lora_te3_) modules out of the output.")
@click.option("--verify", is_flag=True,
              help="Compare every module's delta weight before DST is written; nothing is written if they differ "
                   "(needs torch).")
@click.option("--force", is_flag=True,
              help="Replace DST if it exists and is a LoRA file / PEFT folder (never another file or folder).")
@click.option("--allow-pickle", is_flag=True,
              help="Accept .ckpt/.pt pickles (loaded with torch.load(weights_only=True)).")
@click.option("--te-naming", type=click.Choice(["transformers5", "transformers4"]), default="transformers5",
              show_default=True, help="PEFT output: CLIPTextModel paths without (5) or with (4) 'text_model.' "
                                     "(SD3's CLIPTextModelWithProjection encoders always keep it).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(src: Path, dst: str, to: str, arch: str, dtype: str, bake_scale: bool, drop_t5: bool, verify: bool,
            force: bool, allow_pickle: bool, te_naming: str, fmt: str) -> None:
    """Convert LoRA weights between kohya, PEFT and diffusers layouts.

    Tensor bytes are copied untouched unless --dtype or --bake-scale asks otherwise; every module keeps its exact
    scale (kohya .alpha, PEFT rank_pattern/alpha_pattern, diffusers lora_adapter_metadata). SRC and DST may be
    folders: every LoRA file / PEFT folder in SRC is converted into DST; a DST ending in / is a folder the output
    goes into. SRC is never modified; DST is written atomically, never replaced without --force, and --force
    replaces only a LoRA file or PEFT adapter folder.
    """
    from lora_compat.weights.batch import is_batch_folder, output_name
    from lora_compat.weights.conversion import ConvertOptions, VerificationError
    from lora_compat.weights.convert import convert

    opts = ConvertOptions(to=to, arch=arch, dtype=dtype, bake_scale=bake_scale, force=force,
                          allow_pickle=allow_pickle, te_naming=5 if te_naming == "transformers5" else 4,
                          verify=verify, drop_t5=drop_t5)
    if not src.exists():
        raise UserError("no such file or folder", file=str(src))
    folder_dst = _is_folder_arg(dst)
    dst_path = Path(dst)
    if is_batch_folder(src):
        _run_batch(src, dst_path, opts, fmt)
        return
    if folder_dst:
        _into_folder(dst_path)
        dst_path = dst_path / output_name(src, to)
    try:
        rep = convert(src, dst_path, opts)
    except VerificationError as failed:
        rep = failed.report
    if fmt == "json":
        click.echo(_dumps(_report_json(rep)))
    else:
        _print_report(rep)
    if not rep.written:
        click.echo(_not_written(rep), err=True)
        sys.exit(1)


def _not_written(rep) -> str:
    return f"verify failed: {rep.dst} was not written ({len(rep.verify.failures)} module(s) differ)"


def _print_report(rep) -> None:
    # Plain click.echo: importing rich costs ~40 ms, as much as copying a 150 MB LoRA.
    parts = ", ".join(f"{k} {v}" for k, v in rep.parts.items())
    mib = 1024 * 1024
    from lora_compat.errors import one_line  # paths and names are quoted as literal one-line text

    click.echo(one_line(f"{rep.src} ({rep.src_layout}, {rep.arch}, {rep.algo}) -> {rep.dst} ({rep.to})"))
    click.echo(f"  {rep.modules} modules ({parts}); {rep.bytes_copied / mib:.1f} MiB copied unchanged, "
               f"{rep.bytes_rewritten / mib:.1f} MiB rewritten")
    for n in rep.notes:
        click.echo(f"  note: {n}")
    vres = rep.verify
    if vres is not None:
        status = "OK" if vres.ok else "FAILED"
        click.echo(f"  verify {status}: {vres.modules} modules, max abs err {vres.max_abs:.3g}, max err "
                   f"{vres.max_rel:.3g} of the delta's scale (allowed up to {vres.tolerance:.2g})")
        for name, msg in vres.failures[:20]:
            click.echo(one_line(f"    {name}: {msg}"))


def _run_batch(src: Path, dst: Path, opts, fmt: str) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from lora_compat.weights.batch import batch_items, output_name
    from lora_compat.weights.conversion import VerificationError
    from lora_compat.weights.convert import convert

    items = batch_items(src)
    if dst.exists() and not dst.is_dir():
        raise UserError("SRC is a folder, so DST must be a folder", file=str(dst))
    _into_folder(dst)
    errors: list[str] = []
    reports = []
    con = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=con,
                  disable=fmt == "json" or not con.is_terminal) as prog:
        task = prog.add_task("converting", total=len(items))
        for item in items:
            prog.update(task, description=item.name)
            out = dst / output_name(item, opts.to)
            try:
                reports.append(convert(item, out, opts))
            except VerificationError as failed:
                reports.append(failed.report)
            except UserError as err:
                errors.append(str(err))
            prog.advance(task)
    if fmt == "json":
        click.echo(_dumps({"converted": [_report_json(r) for r in reports], "errors": errors}))
    else:
        for rep in reports:
            _print_report(rep)
        for e in errors:
            click.echo(f"error: {e}", err=True)
    for rep in reports:
        if not rep.written:
            click.echo(_not_written(rep), err=True)
    if errors:
        sys.exit(2)
    if any(not r.written for r in reports):
        sys.exit(1)
