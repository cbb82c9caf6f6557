"""Loading: bad input of every kind ends as one clean line (exit 2); positions; detection; show formats."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest

from lora_compat.config.document import Document
from lora_compat.config.load import detect, load_config
from lora_compat.config.loaders import json_positions, parse_toml, toml_positions
from lora_compat.errors import UserError

from shared_data import FIXTURES

SPINE = FIXTURES / "spine"


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``lora-compat`` in-process: (exit code, stdout, stderr)."""
    from lora_compat.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def assert_clean_refusal(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


KGUI = '{"LoRA_type": "Standard", "max_resolution": "512,512", "epoch": 1, "network_dim": 8}'


@pytest.mark.parametrize("name, content, needles", [
    ("empty.json", b"", ["empty"]),
    ("blank.toml", b"  \n\n", ["empty"]),
    ("broken.json", b'{"a": 1,\n "b": }', ["broken.json:2:", "invalid JSON"]),
    ("broken.toml", b'a = 1\nb = = 2\n', ["broken.toml:2:", "invalid TOML"]),
    ("array.json", b"[1, 2, 3]", ["top level is an array"]),
    ("string.json", b'"hello"', ["top level is a string"]),
    ("binary.json", b"\x00\x01\x02\x03PK\x03\x04" * 10, ["binary data"]),
    ("gbk.json", '{"output_name": "训练"}'.encode("gbk"), ["not valid UTF-8", "gbk.json:1:"]),
    ("utf16.json", '{"a": 1}'.encode("utf-16"), ["UTF-16"]),
    ("unknown.json", b'{"foo": 1, "bar": 2}', ["cannot tell which config dialect", "--dialect"]),
    ("unknown.toml", b'foo = 1\n', ["cannot tell which config dialect"]),
    # Python's int() refuses > 4300 digits with a ValueError that is not a JSON/TOML syntax error
    ("hugeint.json", b'{"LoRA_type": "Standard",\n "network_dim": ' + b"9" * 5000 + b"}",
     ["hugeint.json:2:17:", "too long"]),
    ("hugeint.toml", b'network_module = "networks.lora"\nnetwork_dim = ' + b"9" * 5000 + b"\n",
     ["hugeint.toml:2:15:", "too long"]),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, ["nested too deeply"]),
    ("deep.toml", b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", ["nested too deeply"]),
    ("deepkeys.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, ["nested too deeply"]),
])
def test_bad_input_is_one_clean_line(tmp_path, name: str, content: bytes, needles: list[str]) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    assert_clean_refusal(*run_cli("show", str(p)), *needles)


def assert_marked_invalid(code: int, out: str, err: str, *needles: str) -> None:
    """show displays a config holding values sd-scripts would refuse, marks them, and exits 1 with one line."""
    assert code == 1, (code, out, err)
    assert "Traceback" not in err + out
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "invalid values" in out or '"invalid"' in out, out


@pytest.mark.parametrize("name, content, needles", [
    ("wrongtype.json", b'{"LoRA_type": "Standard", "max_resolution": "512,512",\n "network_dim": "abc"}',
     ["wrongtype.json:2:", "network_dim"]),
    ("wrongtype.toml", b'network_module = "networks.lora"\nnetwork_dim = "abc"\n',
     ["wrongtype.toml:2:", "network_dim"]),
    # JSON Infinity/NaN (accepted by Python's json, so by the GUI) for an int option: no OverflowError escapes
    ("inf.json", b'{"LoRA_type": "Standard", "max_resolution": "512,512",\n "network_dim": Infinity}',
     ["inf.json:2:", "network_dim", "finite"]),
    ("nan.toml", b'network_module = "networks.lora"\nlearning_rate = nan\n', ["nan.toml:2:", "learning_rate",
                                                                              "finite"]),
])
def test_invalid_values_are_shown_marked_with_exit_1(tmp_path, name: str, content: bytes, needles: list[str]) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    for fmt in ("text", "json"):
        code, out, err = run_cli("show", str(p), "--format", fmt)
        assert_marked_invalid(code, out, err, *needles)
        if fmt == "json":
            (bad,) = json.loads(out)["invalid"]
            assert bad["line"] == 2 and needles[1] in (bad["option"], bad["key"])


def test_missing_file_directory_and_huge_file(tmp_path) -> None:
    assert_clean_refusal(*run_cli("show", str(tmp_path / "nope.json")), "file not found")
    assert_clean_refusal(*run_cli("show", str(tmp_path)), "is a directory")
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:  # sparse 50 MB: the size check must refuse before reading
        fh.truncate(50 * 1024 * 1024)
    assert_clean_refusal(*run_cli("show", str(big)), "50.0 MiB")


def test_fifo_and_symlink_loop_are_refused_without_blocking(tmp_path) -> None:
    loop_a, loop_b = tmp_path / "a.json", tmp_path / "b.json"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    assert_clean_refusal(*run_cli("show", str(loop_a)), "a.json", "symbolic link")
    if not hasattr(os, "mkfifo"):
        return
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opening it for reading would block forever: it must be refused before open()
    assert_clean_refusal(*run_cli("show", str(fifo)), "pipe.json", "not a regular file")


def test_bom_and_crlf_keep_values_and_line_numbers(tmp_path) -> None:
    p = tmp_path / "crlf.json"
    p.write_bytes(b'\xef\xbb\xbf{\r\n"LoRA_type": "Standard",\r\n"max_resolution": "512,512",\r\n\r\n'
                  b'"network_dim": 16,\r\n"network_alpha": 8\r\n}\r\n')
    cfg = load_config(str(p))
    assert cfg.get("network_dim") == 16
    assert cfg.locate("network_dim").line == 5
    p.write_bytes(p.read_bytes().replace(b'"network_dim": 16', b'"network_dim": "abc"'))
    assert_marked_invalid(*run_cli("show", str(p)), "crlf.json:5:", "network_dim")


def test_unknown_dialect_option_and_mismatched_format(tmp_path) -> None:
    p = tmp_path / "x.json"
    p.write_text(KGUI)
    code, _out, err = run_cli("show", str(p), "--dialect", "nope")
    assert code == 2 and "Traceback" not in err
    assert_clean_refusal(*run_cli("show", str(p), "--dialect", "sd-scripts-toml"), "reads TOML files")


def test_forced_dialect_is_used(tmp_path) -> None:
    p = tmp_path / "flat.toml"
    p.write_text('network_dim = 4\nlearning_rate = 1e-4\n')
    assert detect(str(p)).dialect == "sd-scripts-toml"
    cfg = load_config(str(p), dialect="sd-scripts-toml")
    assert cfg.get("network_dim") == 4


def test_inputs_are_not_modified(tmp_path) -> None:
    p = tmp_path / "k.json"
    p.write_text(KGUI)
    before = (p.read_bytes(), os.stat(p).st_mtime_ns)
    run_cli("show", str(p), "--format", "json")
    assert (p.read_bytes(), os.stat(p).st_mtime_ns) == before


def test_json_positions_nested() -> None:
    text = '{\n  "a": {"b": [10, {"c": 1}]},\n  "d": "x"\n}'
    pos = json_positions(text)
    assert pos["a"] == (2, 3) and pos["a.b"] == (2, 9) and pos["a.b[1].c"] == (2, 20) and pos["d"] == (3, 3)
    assert pos["a.b[0]"] == (2, 15)


def test_toml_positions_tables_arrays_dotted_multiline() -> None:
    text = ('top = 1\n[a]\nlist = [\n  "x = 1",\n]\ns = """\nfake = 2\n"""\n[[datasets]]\n  [[datasets.subsets]]\n'
            '  image_dir = "i"\n  [[datasets.subsets]]\n  x.y = 1\n[[datasets]]\nr = 1\n')
    pos = toml_positions(text)
    assert pos["top"] == (1, 1) and pos["a.list"] == (3, 1) and pos["a.s"] == (6, 1)
    assert "a.fake" not in pos and "x" not in pos
    assert pos["datasets[0].subsets[0].image_dir"] == (11, 3)
    assert pos["datasets[0].subsets[1].x.y"] == (13, 3)
    assert pos["datasets[0].subsets[1].x"] == (13, 3)       # the implicit table of a dotted key: its line
    assert pos["datasets[1].r"] == (15, 1)


def test_document_origin_falls_back_to_parent() -> None:
    doc = parse_toml("f.toml", "[optimizer_args.args]\nwarmup_ratio = 0.1\n")
    o = doc.origin("optimizer_args.args.warmup_ratio")
    assert (o.file, o.line, o.col, o.raw) == ("f.toml", 2, 1, 0.1)
    assert doc.origin("optimizer_args.args.missing").line == 1
    assert isinstance(doc, Document)


@pytest.mark.parametrize("name, dialect, era", [
    ("toml/base_config.toml", "sd-scripts-toml", None),
    ("toml/kgen.toml", "sd-scripts-toml", "K-gen"),
    ("toml/dataset.toml", "sd-scripts-dataset", None),
    ("cmdline/train.sh", "command-line", None),
])
def test_detection_of_fixtures(name: str, dialect: str, era: str | None) -> None:
    d = detect(str(SPINE / name))
    assert (d.dialect, d.era, d.training) == (dialect, era, True)
    assert d.reasons


def test_kgen_leftovers_are_frontend_only_and_secret_redacted() -> None:
    code, out, err = run_cli("show", str(SPINE / "toml" / "kgen.toml"), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["dialect"] == "sd-scripts-toml" and data["era"] == "K-gen"
    assert {f["key"] for f in data["frontend_only"]} == {"epoch", "noise_offset_type"}
    assert "abcd1234secret" not in out
    assert data["options"]["wandb_api_key"] == "***REDACTED***"
    assert data["provenance"]["network_dim"]["line"] == 3
    for fmt in ("text", "toml"):
        code, out, _ = run_cli("show", str(SPINE / "toml" / "kgen.toml"), "--format", fmt)
        assert code == 0 and "abcd1234secret" not in out


def test_show_toml_round_trips_through_the_sd_scripts_reader(tmp_path) -> None:
    code, out, err = run_cli("show", str(SPINE / "cmdline" / "train_sdxl.bat"), "--format", "toml")
    assert code == 0, err
    p = tmp_path / "out.toml"
    p.write_text(out)
    again = load_config(str(p))
    orig = load_config(str(SPINE / "cmdline" / "train_sdxl.bat"))
    assert again.dialect == "sd-scripts-toml"
    want = {k: s.value for k, s in orig.options.items()}
    got = {k: s.value for k, s in again.options.items()}
    assert want["sdxl"] is True
    assert got == want  # sdxl survives through the '# lora-compat: script = ...' comment


def test_show_text_lists_options_and_notes() -> None:
    code, out, err = run_cli("show", str(SPINE / "cmdline" / "train_sdxl.bat"))
    assert code == 0, err
    assert "command-line" in out and "network_dim" in out and "accelerate-mixed-precision" in out


def test_missing_dataset_config_error_or_note() -> None:
    path = str(SPINE / "toml" / "missing_dataset.toml")
    with pytest.raises(UserError) as info:
        load_config(path, resolve_dataset=True)     # train's mode: it needs the datasets
    assert info.value.line == 2 and "not found" in str(info.value)
    cfg = load_config(path)                         # show/lint/migrate/plan: a note says what is unknown
    assert "dataset-config-missing" in {n.code for n in cfg.notes}
    code, out, err = run_cli("show", path)
    assert code == 0 and "dataset-config-missing" in out, err


def test_dataset_config_errors_are_invalid_values(tmp_path) -> None:
    p = tmp_path / "ds.toml"
    p.write_text('[general]\nshuffle_caption = true\n\n[[datasets]]\n  [[datasets.subsets]]\n'
                 '  image_dir = "/d"\n  keep_token = 1\n')
    cfg = load_config(str(p))
    assert [(iv.option, iv.origin.line) for iv in cfg.invalid] == [("keep_token", 7)]
    assert "extra keys not allowed" in cfg.invalid[0].reason
    assert_marked_invalid(*run_cli("show", str(p)), "ds.toml:7", "keep_token")


def test_show_toml_of_a_dataset_config_round_trips(tmp_path) -> None:
    src = SPINE / "toml" / "dataset.toml"
    code, out, err = run_cli("show", str(src), "--format", "toml")
    assert code == 0, err
    p = tmp_path / "again.toml"
    p.write_text(out)
    a, b = load_config(str(src)), load_config(str(p))
    assert b.dialect == "sd-scripts-dataset"
    flat = lambda c: ({k: s.value for k, s in c.general.items()},  # noqa: E731
                      [({k: s.value for k, s in d.params.items()},
                        [{k: s.value for k, s in sub.params.items()} for sub in d.subsets]) for d in c.datasets])
    assert flat(a) == flat(b)


def test_credentials_never_printed(tmp_path) -> None:
    p = tmp_path / "sec.json"
    p.write_text('{"LoRA_type": "Standard", "max_resolution": "512,512", "wandb_api_key": "sekrit123",'
                 ' "huggingface_token": "hf_zzz", "log_with": "wandb"}')
    for fmt in ("json", "text", "toml"):
        code, out, err = run_cli("show", str(p), "--format", fmt)
        assert code == 0, err
        assert "sekrit123" not in out + err and "hf_zzz" not in out + err


def test_credentials_inside_additional_parameters_never_printed(tmp_path) -> None:
    # the GUI's additional_parameters line carries --huggingface_token VALUE: its raw text, the provenance of every
    # option it sets and the front-end-only record all quote it
    p = tmp_path / "sec.json"
    p.write_text(json.dumps({"LoRA_type": "Standard", "max_resolution": "512,512",
                             "additional_parameters": "--huggingface_token hf_inner_secret --network_dim 64"}))
    for fmt in ("json", "text", "toml"):
        code, out, err = run_cli("show", str(p), "--format", fmt)
        assert code == 0 and "hf_inner_secret" not in out + err, fmt
    data = json.loads(run_cli("show", str(p), "--format", "json")[1])
    assert data["options"]["network_dim"] == 64
    assert data["provenance"]["network_dim"]["raw"].endswith("--network_dim 64")   # the rest stays readable


def test_toml_positions_inline_tables() -> None:
    pos = toml_positions('[n]\nargs = {conv_dim = 4, "x.y" = "a,b", inner = {alpha = 1}} # c\nz = 1\n')
    assert pos["n.args"] == (2, 1)
    assert pos["n.args.conv_dim"] == (2, 9)
    assert pos["n.args.inner.alpha"] == (2, 47)
    assert pos["n.args.x.y"] == (2, 23)
    assert pos["n.z"] == (3, 1)


def test_duplicate_json_keys_and_repeated_options_are_noted(tmp_path) -> None:
    # json.load (the GUI's loader) and argparse keep the LAST value; the earlier one is dead and must be reported
    p = tmp_path / "dup.json"
    p.write_text('{"LoRA_type": "Standard", "max_resolution": "512,512",\n "network_dim": 8,\n'
                 ' "network_alpha": 4,\n "network_dim": 64}', encoding="utf-8")
    cfg = load_config(str(p))
    assert cfg.get("network_dim") == 64 and cfg.locate("network_dim").line == 4
    (note,) = [n for n in cfg.notes if n.code == "duplicate-key"]
    assert (note.origin.key, note.origin.line) == ("network_dim", 2) and "line 4" in note.message

    sh = tmp_path / "train.sh"
    sh.write_text("accelerate launch train_network.py --pretrained_model_name_or_path m \\\n"
                  "  --network_dim 8 --wandb_api_key abcdefsecret1 --xformers \\\n"
                  "  --network_dim 64 --xformers --wandb_api_key abcdefsecret2\n", encoding="utf-8")
    cfg = load_config(str(sh))
    notes = [n for n in cfg.notes if n.code == "duplicate-key"]
    assert sorted(n.origin.key for n in notes) == ["--network_dim", "--wandb_api_key"]   # same flag twice: no note
    assert all("secret" not in n.message for n in notes)
    code, out, _err = run_cli("lint", str(p), str(sh), "--select", "LC113", "--format", "json")
    found = json.loads(out)["findings"]
    assert code == 0 and [(f["code"], f["line"]) for f in found] == [("LC113", 2), ("LC113", 2), ("LC113", 2)]
    assert "secret" not in out


def test_text_output_neither_parses_markup_nor_passes_terminal_escapes(tmp_path) -> None:
    p = tmp_path / "[bold]x.json"
    p.write_text(json.dumps({"LoRA_type": "Standard", "max_resolution": "512,512", "network_dim": 8,
                             "output_name": "[red]pwn[/red] \x1b[31mRED\x1b[0m\nsecond line",
                             "odd\x1b[2Jkey": 1}), encoding="utf-8")
    for args in (("show", str(p)), ("lint", str(p), "--fail-on", "info")):
        code, out, err = run_cli(*args)
        assert code in (0, 1), err
        assert "\x1b" not in out and "\x07" not in out             # escapes are shown, never executed
        assert "odd\\x1b[2Jkey" in out and "[bold]x.json" in out    # literal text, no markup applied
    assert "[red]pwn[/red]" in run_cli("show", str(p))[1]


def test_every_note_code_a_reader_emits_is_catalogued(tmp_path) -> None:
    # lint explains notes by code: a code missing from the catalogue has no description anywhere
    from lora_compat.config.dialects.native import NATIVE_NOTE_CODES
    from lora_compat.config.notes import NOTE_CODES

    known = set(NOTE_CODES) | set(NATIVE_NOTE_CODES)
    seen: set[str] = set()
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix not in (".json", ".toml", ".sh", ".bat") or "migrate" in path.parts:
            continue
        try:
            cfg = load_config(str(path), resolve_dataset=False)
        except UserError:
            continue
        seen |= {n.code for n in cfg.notes}
    assert seen and not seen - known, sorted(seen - known)


def test_dataset_config_with_a_foreign_suffix_is_never_read(tmp_path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    p = tmp_path / "c.toml"
    p.write_text(f'network_module = "networks.lora"\ndataset_config = {json.dumps(str(secret))}\n', encoding="utf-8")
    assert_marked_invalid(*run_cli("show", str(p)), "c.toml:2", "must end in .toml or .json")
    cfg = load_config(str(p))            # an invalid value (sd-scripts refuses the name); the file is not parsed
    assert [i.option for i in cfg.invalid] == ["dataset_config"] and not cfg.datasets
    assert [n.code for n in cfg.notes] == ["dataset-config-bad-suffix"]


def test_show_text_caps_huge_key_lists_but_json_keeps_all(tmp_path) -> None:
    data = {"LoRA_type": "Standard", "max_resolution": "512,512", **{f"junk{i}": i for i in range(260)}}
    p = tmp_path / "junk.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    code, out, _ = run_cli("show", str(p))
    assert code == 0 and "... and 60 more unknown keys" in out and "junk259" not in out
    code, out, _ = run_cli("show", str(p), "--format", "json")
    assert len(json.loads(out)["unknown_keys"]) == 260
