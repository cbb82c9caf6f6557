"""Render docs/options.md from schemas/sd-scripts.schema.json and schemas/sd-scripts-dataset.schema.json.

The schemas are the source of truth; the markdown is generated and checked for drift by
tests/test_options_doc.py. Regenerate with::

    python -m lora_compat.config.options_doc --write      # writes docs/options.md
    python -m lora_compat.config.options_doc               # prints to stdout
    python -m lora_compat.config.options_doc --check      # exit 1 when docs/options.md is stale
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lora_compat.config import options
from lora_compat.resources import PACKAGE_DIR

DOC_PATH = PACKAGE_DIR.parent / "docs" / "options.md"
GROUP_TITLES = {
    "model": "Model", "dataset": "Dataset, captions and buckets", "training": "Training loop",
    "saving": "Saving and output", "precision": "Precision and memory", "attention": "Attention and compile",
    "logging": "Logging", "noise": "Noise and timesteps", "loss": "Loss", "sampling": "Preview sampling",
    "huggingface": "Hugging Face upload", "config": "Config files", "distributed": "Distributed (DDP)",
    "validation": "Validation", "resume": "Resume", "optimizer": "Optimizer and learning rates",
    "scheduler": "LR scheduler", "network": "Network (LoRA)", "masked_loss": "Masked loss",
    "deepspeed": "DeepSpeed", "metadata": "Model-spec metadata", "sdxl": "SDXL only",
}


def _cell(text: Any) -> str:
    """Markdown table cell text: no newlines, escaped pipes."""
    return str(text).replace("\n", " ").replace("|", "\\|")


def _code(value: Any) -> str:
    if value is None:
        return "`None`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _type_text(spec: dict[str, Any]) -> str:
    t = spec.get("type")
    types = t if isinstance(t, list) else [t]
    out = " \\| ".join(x for x in types if x and x != "null") or "any"
    cli = spec.get("x-cli") or {}
    if cli.get("action") == "store_true":
        out += " (flag)"
    elif cli.get("nargs") == "*":
        out += f" (list of {cli.get('type')})"
    elif cli.get("type") == "int_or_float":
        out += " (int = steps, float < 1 = ratio)"
    if "null" in types:
        out += ", optional"
    return out


def _option_section(name: str, spec: dict[str, Any]) -> list[str]:
    lines = [f"### `{name}`", "", spec.get("description", ""), ""]
    rows: list[tuple[str, str]] = [("type", _type_text(spec)), ("default", _code(spec.get("default")))]
    if spec.get("x-defaults"):
        rows.append(("default per family", ", ".join(f"{f}: {_code(v)}" for f, v in spec["x-defaults"].items())))
    if spec.get("x-recommended"):
        rows.append(("recommended (docs)", ", ".join(f"{f}: {_code(v)}" for f, v in spec["x-recommended"].items())))
    if spec.get("x-scripts"):
        rows.append(("scripts", ", ".join(spec["x-scripts"]) + " (not train_network.py)"))
    if spec.get("enum"):
        rows.append(("allowed", ", ".join(_code(v) for v in spec["enum"])))
    rng = [f"{k} {spec[k]}" for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in spec]
    if rng:
        rows.append(("range", ", ".join(rng)))
    cli = spec.get("x-cli")
    if cli:
        facts = [f"{k}={v!r}" for k, v in cli.items() if v is not None]
        rows.append(("argparse", "`" + ", ".join(facts) + "`"))
    elif spec.get("x-pseudo"):
        rows.append(("argparse", "pseudo-option (not an argparse option)"))
    if spec.get("x-arch"):
        rows.append(("architectures", ", ".join(spec["x-arch"])))
    if spec.get("x-arch-note"):
        rows.append(("architecture note", spec["x-arch-note"]))
    if spec.get("x-since"):
        rows.append(("since", spec["x-since"]))
    if spec.get("x-since-note"):
        rows.append(("history", spec["x-since-note"]))
    if spec.get("x-dataset-key"):
        rows.append(("dataset config", f"fallback for `{spec['x-dataset-key']}`"))
    if spec.get("x-peft"):
        rows.append(("PEFT", spec["x-peft"]))
    if spec.get("x-diffusers"):
        rows.append(("diffusers", spec["x-diffusers"]))
    if spec.get("x-secret"):
        rows.append(("credential", "yes — redacted from every lora-compat output"))
    if spec.get("x-security"):
        rows.append(("security", spec["x-security"]))
    if spec.get("x-ref"):
        rows.append(("reference", spec["x-ref"]))
    lines += ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows] + [""]
    for m in spec.get("x-misconception") or []:
        head = f"**Misconception** ({m['source']}, key `{m['as_written']}`): "
        claim = f"“{m['claim']}”" if m.get("quoted") else m["claim"]
        lines += [f"> {head}{claim}", ">", f"> **Actually:** {m['truth']}", ""]
    return lines


def _dataset_section() -> list[str]:
    lines = ["## Dataset config keys (`--dataset_config`)", "",
             "Levels: `G` = `[general]`, `D-*` = `[[datasets]]`, `S-*` = `[[datasets.subsets]]`, for DreamBooth "
             "(`DB`), fine-tune (`FT`) and ControlNet/mask (`CN`) datasets. Precedence: subset > dataset > "
             "general > command-line option > default. Unknown keys are errors in sd-scripts.", "",
             "| key | type | default | levels | command-line fallback | meaning |",
             "|---|---|---|---|---|---|"]
    for key in options.dataset_param_names():
        spec = options.dataset_spec(key) or {}
        t = spec.get("type") or ("int or [int, int]" if key == "resolution" else "any")
        if spec.get("x-strict-float") or (spec.get("items") or {}).get("x-strict-float"):
            t = f"{t} (float only, integers rejected)"
        fb = spec.get("x-option")
        lines.append(f"| `{key}` | {_cell(t)} | {_cell(_code(spec.get('default')))} | "
                     f"{_cell(', '.join(spec.get('x-levels', [])))} | {f'`--{fb}`' if fb else ''} | "
                     f"{_cell(spec.get('description', ''))} |")
    notes = [(key, m) for key in options.dataset_param_names() for m in options.dataset_misconceptions(key)]
    if notes:
        lines += ["", "### Dataset-config misconceptions", ""]
        for key, m in notes:
            lines += [f"> **`{key}`** ({m['source']}): {m['claim']}", ">", f"> **Actually:** {m['truth']}", ""]
    return [*lines, ""]


def render() -> str:
    """The full docs/options.md text."""
    groups = options.groups()
    out = ["# Options reference", "",
           "<!-- Generated from schemas/sd-scripts.schema.json and schemas/sd-scripts-dataset.schema.json by "
           "`python -m lora_compat.config.options_doc --write`. Do not edit by hand. -->", "",
           "Every option of sd-scripts `train_network.py` / `sdxl_train_network.py` (canonical names in "
           "lora-compat), what it really does, its argparse facts, and how it maps onto PEFT/diffusers. "
           "`lora-compat explain KEY` shows the same facts plus the names each legacy front-end uses "
           "(kohya_ss GUI, Derrian) for a key.", "",
           f"{len(options.option_names())} options in {len(groups)} groups; "
           f"{len(options.dataset_param_names())} dataset-config keys.", "", "## Contents", ""]
    for g in groups:
        out.append(f"- [{GROUP_TITLES.get(g, g)}](#{_anchor(GROUP_TITLES.get(g, g))}): "
                   + ", ".join(f"`{n}`" for n in groups[g]))
    out.append("- [Dataset config keys](#dataset-config-keys---dataset_config)")
    out.append("")
    for g, names in groups.items():
        out += [f"## {GROUP_TITLES.get(g, g)}", ""]
        for name in names:
            out += _option_section(name, options.spec(name) or {})
    out += _dataset_section()
    return "\n".join(out).rstrip() + "\n"


def _anchor(title: str) -> str:
    """GitHub-style heading anchor."""
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return keep.strip().replace(" ", "-")


def write(path: Path | str = DOC_PATH) -> Path:
    """Write the rendered doc atomically (:func:`lora_compat.atomic.write_text`)."""
    from lora_compat.atomic import write_text

    path = Path(path)
    write_text(path, render())
    return path


def main(argv: list[str] | None = None) -> int:
    """``--write``: regenerate docs/options.md; ``--check``: exit 1 when it is stale; else print to stdout."""
    args = sys.argv[1:] if argv is None else argv
    if "--write" in args:
        print(f"wrote {write()}")
        return 0
    if "--check" in args:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != render():
            print(f"{DOC_PATH} is stale: run python -m lora_compat.config.options_doc --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
