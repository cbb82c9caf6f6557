"""Command lines: shell/batch tokenizing, finding the training invocation, and sd-scripts' argparse.

sd-scripts parses its command line with argparse (``allow_abbrev`` on). :func:`parse_sd_scripts_args`
reproduces that parser exactly — prefix abbreviations and the "ambiguous option" error, ``nargs``
lists, flags, ``choices``, the ``int_or_float`` warmup type, and argparse's error texts — from the
``x-cli`` facts in ``schemas/sd-scripts.schema.json`` (property order = sd-scripts' registration order,
which argparse uses when listing ambiguous matches). Nothing here executes or imports anything named
in a config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lora_compat.arch.families import SCRIPT_FAMILIES
from lora_compat.config.document import CMDLINE, Document
from lora_compat.config.shell import (
    CMD,
    PS,
    SH,
    CommandSyntaxError,
    Token,
    evaluate_script,
    guess_flavor,
    script_flavor,
)
from lora_compat.errors import UserError

# LoRA training scripts of every family (lora_compat.arch.families) -> sdxl; the family is decided by the spine
# (config/family.py) from the script name among other markers.
LORA_SCRIPTS = {script: script == "sdxl_train_network.py" for script in SCRIPT_FAMILIES}
# Other sd-scripts entry points: recognised so the refusal can say what the file trains instead.
OTHER_SCRIPTS = {
    "train_db.py": "DreamBooth full fine-tuning",
    "fine_tune.py": "full fine-tuning",
    "sdxl_train.py": "SDXL full fine-tuning",
    "train_textual_inversion.py": "textual inversion",
    "train_textual_inversion_XTI.py": "textual inversion (XTI)",
    "sdxl_train_textual_inversion.py": "SDXL textual inversion",
    "train_controlnet.py": "ControlNet training",
    "sdxl_train_control_net_lllite.py": "ControlNet-LLLite training",
    "flux_train.py": "FLUX.1 fine-tuning",
    "flux_train_control_net.py": "FLUX.1 ControlNet training",
    "sd3_train.py": "SD3 fine-tuning",
    "lumina_train.py": "Lumina 2 fine-tuning",
    "anima_train.py": "Anima fine-tuning",
    "sdxl_train_control_net.py": "SDXL ControlNet training",
    "train_control_net.py": "ControlNet training",
    "train_leco.py": "LECO training",
}

# accelerate launch options that take no value (everything else takes one).
ACCELERATE_FLAGS = frozenset({
    "--multi_gpu", "--cpu", "--use_deepspeed", "--use_fsdp", "--use_xpu", "--use_mps_device", "--tpu",
    "--quiet", "-q", "--debug", "--dynamo_use_fullgraph", "--dynamo_use_dynamic", "--no_python", "-m",
    "--module", "--same_network",
})


class ArgparseError(Exception):
    """What sd-scripts' argparse would print after ``error:`` (``token`` = where, ``dest`` = which option,
    when known)."""

    def __init__(self, message: str, token: Token | None = None, dest: str | None = None):
        super().__init__(message)
        self.message = message
        self.token = token
        self.dest = dest


# ------------------------------------------------------------------------------------ shell words
def is_windows_script(path: str, text: str) -> bool:
    """Batch/PowerShell quoting (backslash is a path separator, ``^``/`` ` `` continue lines)?"""
    return script_flavor(path, text) != SH


def split_commands(text: str, *, windows: bool) -> list[list[Token]]:
    """Split script text into commands (lists of words): sh rules, or batch/PowerShell rules when ``windows``
    (which of the two from the content). Variables assigned in the text are expanded (see
    :mod:`lora_compat.config.shell`)."""
    flavor = SH if not windows else (PS if guess_flavor(text) == PS else CMD)
    return evaluate_script("", text, flavor).commands


def join_pasted_lines(commands: list[list[Token]]) -> list[list[Token]]:
    """Text files (not scripts): lines starting with ``--`` continue the training command above them.

    Command lines pasted from a GUI console or a forum post often lose their continuation characters; a
    shell would fail on them, but the intent is unambiguous.
    """
    out: list[list[Token]] = []
    for cmd in commands:
        if out and cmd[0].text.startswith("--") and any(script_name(t.text) in LORA_SCRIPTS for t in out[-1]):
            out[-1] = out[-1] + cmd
        else:
            out.append(cmd)
    return out


def script_name(word: str) -> str:
    """File name of a path written with / or \\ separators."""
    return re.split(r"[\\/]", word)[-1]


@dataclass
class Invocation:
    """The training command found in a script."""

    script: Token
    args: list[Token]
    launcher: list[Token] = field(default_factory=list)        # e.g. accelerate launch --num_cpu... python
    launcher_options: list[tuple[str, str | None, Token]] = field(default_factory=list)

    @property
    def sdxl(self) -> bool:
        return LORA_SCRIPTS.get(script_name(self.script.text), False)

    @property
    def script_name(self) -> str:
        """The training script's file name (``flux_train_network.py``)."""
        return script_name(self.script.text)

    @property
    def modelled(self) -> bool:
        """True when lora-compat reads this script's argument space (a parser of its own in the schema and its
        family's ``config`` stage supported); otherwise options train_network.py does not know are kept as
        unmodelled instead of refused."""
        from lora_compat.arch.families import CONFIG, is_supported, script_families

        name = self.script_name
        return name in MODELLED_SCRIPTS and any(is_supported(f, CONFIG) for f in script_families(name))


def find_invocations(path: str, commands: list[list[Token]]) -> tuple[Invocation, list[Invocation]]:
    """The training command to read and the other training commands of the file.

    Rule (docs/cli.md): a file with several LoRA training commands (any family's script) is read at its
    LAST one (what the script ends up training; earlier ones are often test runs or older variants kept
    above); the others are returned so readers can list them. UserError when there is none.
    """
    found: list[Invocation] = []
    other: tuple[str, Token] | None = None
    for cmd in commands:
        for i, tok in enumerate(cmd):
            name = script_name(tok.text)
            if name in LORA_SCRIPTS:
                found.append(Invocation(script=tok, args=cmd[i + 1:], launcher=cmd[:i],
                                        launcher_options=_launcher_options(cmd[:i])))
                break
            if name in OTHER_SCRIPTS and other is None:
                other = (name, tok)
    if not found:
        if other is not None:
            name, tok = other
            raise UserError(f"runs {name} ({OTHER_SCRIPTS[name]}), not LoRA training; lora-compat reads "
                            "LoRA training command lines (train_network.py, sdxl_train_network.py, "
                            "flux_train_network.py ...)", file=path, line=tok.line, col=tok.col)
        raise UserError("no LoRA training command (train_network.py, sdxl_train_network.py, flux_train_network.py "
                        "...) found in this command file", file=path)
    return found[-1], found[:-1]


def _launcher_options(words: list[Token]) -> list[tuple[str, str | None, Token]]:
    """``accelerate launch`` options written before the script: (name, value or None, token).

    Only the words after ``accelerate launch`` / ``-m accelerate.commands.launch`` are accelerate's; what comes
    before belongs to other wrappers (``conda run -n ENV``, ``python -u``) and is not recorded.
    """
    start = None
    for i, tok in enumerate(words):
        name = script_name(tok.text).lower()
        if name == "accelerate.commands.launch" or (
                tok.text == "launch" and i > 0 and script_name(words[i - 1].text).lower() in
                ("accelerate", "accelerate.exe")):
            start = i + 1
    if start is None:
        return []
    words = words[start:]
    opts: list[tuple[str, str | None, Token]] = []
    i = 0
    while i < len(words):
        w = words[i].text
        if w.startswith("-") and w not in ("-m",):
            if "=" in w:
                k, v = w.split("=", 1)
                opts.append((k, v, words[i]))
            elif w in ACCELERATE_FLAGS or i + 1 >= len(words) or words[i + 1].text.startswith("-"):
                opts.append((w, None, words[i]))
            else:
                nxt = words[i + 1].text
                if script_name(nxt).lower().startswith(("python", "py.exe")) or nxt.endswith((".exe",)):
                    opts.append((w, None, words[i]))
                else:
                    opts.append((w, nxt, words[i]))
                    i += 1
        i += 1
    return opts


# ------------------------------------------------------------------------------------ argparse
@dataclass(frozen=True)
class ArgSpec:
    """argparse facts of one sd-scripts option (from the schema's ``x-cli``)."""

    dest: str
    type: str                 # int | float | str | bool | int_or_float
    action: str               # store | store_true | store_false | store_const
    nargs: Any                # None | "*" | "+" | "?" | int
    choices: tuple[Any, ...] | None
    const: Any
    default: Any


#: Scripts whose whole argument space the schema models (a parser of its own); the other LoRA scripts are read
#: with train_network.py's parser plus the options of theirs the schema knows, leniently (see ParsedArgs).
MODELLED_SCRIPTS = ("train_network.py", "sdxl_train_network.py", "flux_train_network.py")


def parser_script(script: str | bool) -> str:
    """The script whose argparse parser to emulate: ``True``/``False`` are the legacy ``sdxl`` flag."""
    if isinstance(script, bool):
        return "sdxl_train_network.py" if script else "train_network.py"
    return script


@lru_cache(maxsize=8)
def argparse_table(script: str | bool = "train_network.py") -> dict[str, ArgSpec]:
    """Option string -> ArgSpec of ``script``'s parser in its registration order (``--help`` first, as argparse
    adds it). Abbreviations are per script: ``--clip`` is ``--clip_skip`` for train_network.py but ambiguous
    (``clip_skip``, ``clip_l``) for flux_train_network.py. ``script`` may be the legacy ``sdxl`` bool."""
    from lora_compat.resources import load_schema

    script = parser_script(script)
    props = load_schema("sd-scripts.schema.json").get("properties", {})
    table: dict[str, ArgSpec] = {"--help": ArgSpec("help", "bool", "help", None, None, None, None)}
    for name, spec in props.items():
        cli = spec.get("x-cli")
        if not cli or spec.get("x-pseudo"):
            continue
        if spec.get("x-scripts") and script not in spec["x-scripts"]:
            continue
        choices = cli.get("choices")
        table[f"--{name}"] = ArgSpec(
            dest=name, type=cli.get("type") or "str", action=cli.get("action") or "store",
            nargs=cli.get("nargs"), choices=tuple(choices) if choices is not None else None,
            const=cli.get("const"), default=spec.get("default"))
    return table


def argparse_defaults(script: str | bool = "train_network.py") -> dict[str, Any]:
    """Every option's value when not given (``parser.parse_args([])``) for ``script`` (or the legacy sdxl bool)."""
    return {s.dest: s.default for s in argparse_table(script).values() if s.action != "help"}


_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


@dataclass
class GivenOption:
    """One option occurrence on the command line.

    ``unresolved``: shell expressions in its value words that the script does not define (``$EPOCHS`` set
    outside the script, ``$(date +%s)``): ``value`` is then None, the value is unknown.
    """

    dest: str
    written: str             # the option string as written (may be an abbreviation)
    raw: list[str]           # value words
    value: Any               # converted value
    token: Token
    unresolved: tuple[str, ...] = ()


@dataclass
class ParsedArgs:
    given: list[GivenOption]
    # options the table does not know, kept (not refused) for scripts whose argument space lora-compat does not
    # model yet (flux_train_network.py ...): dest = the name without dashes, value = its words (True for none)
    unmodelled: list[GivenOption] = field(default_factory=list)
    errors: list[ArgparseError] = field(default_factory=list)   # what argparse refuses (``collect=True``)
    unresolved: list[Token] = field(default_factory=list)         # unknown words not taken as an option's value

    def values(self) -> dict[str, Any]:
        """dest -> converted value, last occurrence wins (as argparse)."""
        return {g.dest: g.value for g in self.given}


def _convert(spec: ArgSpec, option: str, raw: str, tok: Token) -> Any:
    kind = spec.type
    if kind == "int":
        try:
            value: Any = int(raw)
        except ValueError:
            raise ArgparseError(f"argument {option}: invalid int value: {raw!r}", tok) from None
    elif kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise ArgparseError(f"argument {option}: invalid float value: {raw!r}", tok) from None
    elif kind == "int_or_float":
        value = int_or_float(raw, option, tok)
    else:
        value = raw
    if spec.choices is not None and value not in spec.choices:
        choices = ", ".join(repr(c) for c in spec.choices)
        raise ArgparseError(f"argument {option}: invalid choice: {value!r} (choose from {choices})", tok)
    return value


def int_or_float(raw: str, option: str = "", tok: Token | None = None) -> int | float:
    """sd-scripts' ``int_or_float`` argparse type: ``"10%"`` -> 0.1, ``< 1`` -> float ratio, else int steps."""
    if raw.endswith("%"):
        try:
            return float(raw[:-1]) / 100.0
        except ValueError:
            raise ArgparseError(f"argument {option}: Value '{raw}' is not a valid percentage", tok) from None
    try:
        f = float(raw)
        if f >= 1:
            return int(raw)
        return f
    except ValueError:
        raise ArgparseError(f"argument {option}: '{raw}' is not an int or float", tok) from None


def _classify(word: str, table: dict[str, ArgSpec]) -> tuple[str, str | None, str | None] | None:
    """argparse ``_parse_optional``: None for a value word, else (option string or '', explicit arg, written).

    '' as option string = an unknown option (goes to "unrecognized arguments").
    """
    if not word or word[0] != "-":
        return None
    if word in table:
        return word, None, word
    if len(word) == 1:
        return None
    explicit = None
    opt = word
    if "=" in word:
        opt, explicit = word.split("=", 1)
        if opt in table:
            return opt, explicit, opt
    if word.startswith("--"):
        prefix = opt
        matches = [o for o in table if o.startswith(prefix)]
    else:
        short, prefix = word[:2], word
        matches = [o for o in table if o == short or o.startswith(prefix)]
    if len(matches) > 1:
        raise ArgparseError(f"ambiguous option: {opt} could match {', '.join(matches)}")
    if len(matches) == 1:
        return matches[0], explicit, opt
    if _NEGATIVE_NUMBER.match(word):
        return None
    if " " in word:
        return None
    return "", None, word


def _name_unresolved(tok: Token) -> bool:
    """An option word whose NAME (before any ``=``) holds an unresolved shell expression (``--$OPT=1``)."""
    name = tok.text.split("=", 1)[0]
    return any(u in name for u in tok.unresolved)


_BAD = "!"        # an option argparse refuses (ambiguous abbreviation, --help): its value words go with it
_UNKNOWN = "?"    # an option word whose name is an unresolved shell expression


def parse_sd_scripts_args(words: list[Token], *, sdxl: bool = False, script: str | None = None,
                          collect: bool = False, lenient: bool = False) -> ParsedArgs:
    """Parse words exactly as ``script``'s argparse would (default: train_network.py, or sdxl_train_network.py with
    ``sdxl``).

    ``collect=False``: the first error raises :class:`ArgparseError` with argparse's message. ``collect=True``:
    every error is recorded in :attr:`ParsedArgs.errors` and parsing goes on, so a reader can show the rest of
    the command line and mark what sd-scripts would refuse. Words holding unresolved shell expressions
    (:attr:`Token.unresolved`) never cause an error: their option's value is unknown (``GivenOption.unresolved``)
    and a lone unknown word (``$EXTRA_ARGS``) not taken as a value goes to :attr:`ParsedArgs.unresolved`.
    ``lenient``: an option the table does not know (another script's argument space) and the value words after it
    go to :attr:`ParsedArgs.unmodelled` instead of argparse's "unrecognized arguments".
    """
    table = argparse_table(script if script is not None else sdxl)
    errors: list[ArgparseError] = []

    def fail(exc: ArgparseError) -> None:
        if not collect:
            raise exc
        errors.append(exc)

    kinds: list[tuple[str, str | None, str | None] | None] = []
    for k, w in enumerate(words):
        if w.text == "--" and not w.unresolved:
            # argparse: "--" ends the options; it and every word after it are unrecognized (no positionals)
            kinds += [("", None, x.text) for x in words[k:]]
            break
        if w.opaque:
            kinds.append(None)
            continue
        if w.unresolved and w.text.startswith("-") and _name_unresolved(w):
            kinds.append((_UNKNOWN, None, w.text))
            continue
        try:
            kinds.append(_classify(w.text, table))
        except ArgparseError as exc:
            fail(ArgparseError(exc.message, w))
            kinds.append((_BAD, None, w.text))
    given: list[GivenOption] = []
    unmodelled: list[GivenOption] = []
    extras: list[Token] = []
    unresolved: list[Token] = []
    i = 0
    while i < len(words):
        kind = kinds[i]
        tok = words[i]
        if lenient and kind is not None and kind[0] == "" and tok.text.startswith("--") and len(tok.text) > 2:
            name, _, inline = tok.text[2:].partition("=")
            j = i + 1
            while not inline and j < len(words) and kinds[j] is None:
                j += 1
            words_of = [inline] if inline else [w.text for w in words[i + 1:j]]
            unmodelled.append(GivenOption(name, tok.text.split("=", 1)[0], words_of,
                                          (words_of[0] if len(words_of) == 1 else words_of) if words_of else True,
                                          tok))
            i = j if not inline else i + 1
            continue
        if kind is None or kind[0] == "":
            if tok.opaque or (kind is None and tok.unresolved):
                unresolved.append(tok)
            else:
                extras.append(tok)
            i += 1
            continue
        opt, explicit, written = kind
        j = i + 1
        while j < len(words) and kinds[j] is None:
            j += 1
        if opt in (_BAD, _UNKNOWN):
            if opt == _UNKNOWN:
                unresolved.append(tok)
            i = j        # the refused/unknown option takes its value words with it
            continue
        spec = table[opt]
        if spec.action == "help":
            fail(ArgparseError("--help is not a training option (it prints sd-scripts' usage and exits)", tok))
            i = j
            continue
        flag = spec.action in ("store_true", "store_false", "store_const")
        value_tokens: list[Token]
        if explicit is not None:
            if flag:
                fail(ArgparseError(f"argument {opt}: ignored explicit argument {explicit!r}", tok, spec.dest))
                i += 1
                continue
            raw = [explicit]
            value_tokens = [tok]
            i += 1
        else:
            avail = words[i + 1:j]
            need = _values_needed(spec, opt, avail, tok)
            if isinstance(need, ArgparseError):
                fail(need)
                i = j
                continue
            value_tokens = avail[:need]
            raw = [a.text for a in value_tokens]
            i += 1 + need
        unknown = tuple(u for t in value_tokens for u in t.unresolved)
        if unknown:
            given.append(GivenOption(spec.dest, written or opt, raw, None, tok, unknown))
            continue
        try:
            value = _option_value(spec, opt, raw, tok)
        except ArgparseError as exc:
            fail(ArgparseError(exc.message, exc.token or tok, spec.dest))
            continue
        given.append(GivenOption(spec.dest, written or opt, raw, value, tok))
    if extras:
        fail(ArgparseError(f"unrecognized arguments: {' '.join(t.text for t in extras)}", extras[0]))
    return ParsedArgs(given, unmodelled, errors, unresolved)


def _values_needed(spec: ArgSpec, opt: str, avail: list[Token], tok: Token) -> int | ArgparseError:
    """How many of the value words ``avail`` the option takes (argparse's nargs), or the error."""
    if spec.action in ("store_true", "store_false", "store_const"):
        return 0
    if spec.nargs is None:
        return 1 if avail else ArgparseError(f"argument {opt}: expected one argument", tok, spec.dest)
    if spec.nargs == "?":
        return 1 if avail else 0
    if spec.nargs == "*":
        return len(avail)
    if spec.nargs == "+":
        return len(avail) if avail else ArgparseError(f"argument {opt}: expected at least one argument", tok,
                                                      spec.dest)
    n = int(spec.nargs)
    return n if len(avail) >= n else ArgparseError(f"argument {opt}: expected {n} arguments", tok, spec.dest)


def _option_value(spec: ArgSpec, opt: str, raw: list[str], tok: Token) -> Any:
    if spec.action == "store_true":
        return True
    if spec.action == "store_false":
        return False
    if spec.action == "store_const":
        return spec.const
    if spec.nargs in ("*", "+") or isinstance(spec.nargs, int):
        return [_convert(spec, opt, r, tok) for r in raw]
    if spec.nargs == "?" and not raw:
        return spec.const
    return _convert(spec, opt, raw[0], tok)


# ------------------------------------------------------------------------------------ documents
SCRIPT_SUFFIXES = (".sh", ".bash", ".zsh", ".bat", ".cmd", ".ps1", ".command")


def parse_command_file(path: str, text: str) -> Document:
    """Parse a shell/batch/text file holding a training command into a :class:`Document`.

    ``data`` = ``[(dest, raw value words, line), ...]``; ``positions`` = ``{"--dest": (line, col)}``;
    ``meta`` = ``script``, ``sdxl``, ``parsed`` (:class:`ParsedArgs`, with what argparse would refuse in
    ``parsed.errors``), ``launcher``, ``launcher_options`` [(name, value, line)], ``other_commands``
    [(script, line)] (the training commands not read), ``flavor`` (sh / cmd / ps).
    """
    flavor = script_flavor(path, text)
    try:
        commands = evaluate_script(path, text, flavor).commands
    except CommandSyntaxError as exc:
        raise UserError(f"cannot split command line: {exc.message}", file=path, line=exc.line,
                        col=exc.col) from None
    if not path.lower().endswith(SCRIPT_SUFFIXES):
        commands = join_pasted_lines(commands)
    inv, others = find_invocations(path, commands)
    modelled = inv.modelled
    parsed = parse_sd_scripts_args(inv.args, script=inv.script_name if modelled else "train_network.py",
                                   collect=True, lenient=not modelled)
    doc = command_document(path, text, inv, parsed)
    doc.meta["other_commands"] = [(script_name(o.script.text), o.script.line) for o in others]
    doc.meta["flavor"] = flavor
    return doc


def command_document(path: str, text: str, inv: Invocation, parsed: ParsedArgs) -> Document:
    """Build the Document of an already parsed invocation."""
    data = [(g.dest, g.raw, g.token.line) for g in parsed.given]
    positions = {f"--{g.dest}": (g.token.line, g.token.col) for g in parsed.given}
    meta = {
        "script": script_name(inv.script.text),
        "script_pos": (inv.script.line, inv.script.col),
        "sdxl": inv.sdxl,
        "parsed": parsed,
        "launcher": [t.text for t in inv.launcher],
        "launcher_options": [(k, v, t.line, t.col) for k, v, t in inv.launcher_options],
    }
    return Document(path=path, text=text, fmt=CMDLINE, data=data, positions=positions, meta=meta)
