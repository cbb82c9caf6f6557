"""lint/explain commands end to end: exit codes, formats (text/json/sarif/github), selection, fixes, redaction."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lora_compat.cli import cli

from shared_data import FIXTURES

LINT = FIXTURES / "lint"
BAD_TOML = LINT / "sdscripts_bad.toml"
BAD_JSON = LINT / "kohya_sdxl_bad.json"
CLEAN = LINT / "clean.toml"
SECRETS = ("wandbsecret0123456789", "kohyasecretkey987654321")


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process the way main() does (UserError -> exit 2, one line)."""
    from lora_compat.errors import UserError

    runner = CliRunner()
    result = runner.invoke(cli, list(args), catch_exceptions=True)
    if isinstance(result.exception, UserError):
        return 2, result.stdout, f"error: {result.exception}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    for f in (BAD_TOML, BAD_JSON, CLEAN):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


# -- exit codes ----------------------------------------------------------------------------------------

def test_clean_config_exits_0() -> None:
    code, out, _ = run("lint", str(CLEAN), "--fail-on", "info")
    assert code == 0 and "All checks passed" in out


def test_findings_exit_1_and_fail_on_threshold() -> None:
    assert run("lint", str(BAD_TOML))[0] == 1
    # only info-level rules selected: below the default threshold -> 0, at --fail-on info -> 1
    assert run("lint", str(BAD_JSON), "--select", "LC202")[0] == 0
    assert run("lint", str(BAD_JSON), "--select", "LC202", "--fail-on", "info")[0] == 1


def test_usage_and_input_errors_exit_2(tmp_path: Path) -> None:
    code, _, err = run("lint", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err
    assert run("lint", str(CLEAN), "--select", "LC999")[0] == 2
    assert run("lint", str(CLEAN), "--in-place")[0] == 2
    code, out, _ = run("lint", str(CLEAN), "--dialect", "foo")   # a usage error, not a per-file load error
    assert code == 2 and "load error" not in out


def test_load_error_in_multi_file_run_exits_2_but_reports_other_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"network_dim": 8,', encoding="utf-8")
    code, out, _ = run("lint", str(broken), str(BAD_TOML), "--format", "json")
    data = json.loads(out)
    assert code == 2
    assert [e["file"].endswith("broken.json") for e in data["errors"]] == [True]
    assert any(f["code"] == "LC105" for f in data["findings"])
    assert data["summary"]["load_errors"] == 1


def test_skip_non_configs(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "x", "version": "1.0.0"}', encoding="utf-8")
    shutil.copy(CLEAN, tmp_path / "clean.toml")
    code, out, _ = run("lint", str(tmp_path), "--skip-non-configs", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"]["skipped"] == 1 and not data["errors"]


def test_skip_non_configs_skips_jsonc_but_not_a_broken_training_config(tmp_path: Path) -> None:
    # pre-commit passes every *.json: tsconfig.json / VS Code settings with comments must not fail the hook
    (tmp_path / "tsconfig.json").write_text('{\n  // comment\n  "compilerOptions": {"strict": true},\n}\n',
                                            encoding="utf-8")
    (tmp_path / "broken.json").write_text('{\n  "network_dim": 32,\n  "network_alpha": 16,,\n}\n', encoding="utf-8")
    code, out, _ = run("lint", str(tmp_path / "tsconfig.json"), "--skip-non-configs", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["skipped"] == 1
    code, out, _ = run("lint", str(tmp_path / "broken.json"), "--skip-non-configs", "--format", "json")
    assert code == 2 and json.loads(out)["errors"][0]["message"].endswith("enclosed in double quotes")
    assert run("lint", str(tmp_path / "tsconfig.json"))[0] == 2      # without the flag: a load error as before


# -- selection -------------------------------------------------------------------------------------------

def test_select_and_ignore_by_prefix_and_name() -> None:
    _, out, _ = run("lint", str(BAD_TOML), "--format", "json", "--select", "LC5")
    assert {f["code"] for f in json.loads(out)["findings"]} == {"LC501", "LC503", "LC506"}
    _, out, _ = run("lint", str(BAD_TOML), "--format", "json", "--select", "LC5",
                    "--ignore", "LC501,pickle-output-format")
    assert {f["code"] for f in json.loads(out)["findings"]} == {"LC503"}


def test_select_and_ignore_by_group_dotted_name_and_old_code(tmp_path: Path) -> None:
    _, out, _ = run("lint", str(BAD_TOML), "--format", "json", "--select", "group:security")
    assert {f["code"] for f in json.loads(out)["findings"]} == {"LC501", "LC503", "LC506"}
    _, out, _ = run("lint", str(BAD_TOML), "--format", "json", "--select", "group:security",
                    "--ignore", "security.pickle_output_format")
    assert {f["code"] for f in json.loads(out)["findings"]} == {"LC501", "LC503"}
    assert run("lint", str(BAD_TOML), "--select", "group:no_such_group")[0] == 2
    # LC605 was split: the old code still selects (and ignores) every former LC605 finding
    _, out, _ = run("lint", str(BAD_JSON), "--format", "json", "--select", "LC605")
    split = {f["code"] for f in json.loads(out)["findings"]}
    assert split and split <= {"LC114", "LC250", "LC251", "LC252", "LC253", "LC409"} | {
        f"LC6{n}" for n in range(17, 25)}
    _, out, _ = run("lint", str(BAD_JSON), "--format", "json", "--ignore", "frontend-quirk")
    assert not {f["code"] for f in json.loads(out)["findings"]} & split
    cfg = tmp_path / "s.toml"
    cfg.write_text("# lora-compat: ignore-file[group:security]\n" + BAD_TOML.read_text(encoding="utf-8"),
                   encoding="utf-8")
    _, out, _ = run("lint", str(cfg), "--format", "json")
    assert not {f["code"] for f in json.loads(out)["findings"]} & {"LC501", "LC503", "LC506"}


def test_note_findings_carry_their_note_code_and_explain_hint() -> None:
    _, out, _ = run("lint", str(BAD_JSON), "--format", "json")
    notes = [f for f in json.loads(out)["findings"] if f["note"]]
    assert any(f["code"] == "LC622" for f in notes)     # a note-only rule: the message ends with the note code
    assert all(f["message"].endswith(f"[{f['note']}]") for f in notes if f["code"] == "LC622")
    _, text, _ = run("lint", str(BAD_JSON))
    assert f"-> lora-compat explain {notes[0]['note']}" in text


# -- formats ---------------------------------------------------------------------------------------------

def test_text_output_groups_by_file_with_explain_hint() -> None:
    _, out, _ = run("lint", str(BAD_TOML))
    assert "sdscripts_bad.toml" in out
    line = next(ln for ln in out.splitlines() if "LC105" in ln and "error" in ln)
    assert "sdscripts_bad.toml:8" in line and "lr_warmup_steps" in line
    assert "-> lora-compat explain LC105" in out


def test_json_shape_and_key_as_written() -> None:
    _, out, _ = run("lint", str(BAD_TOML), "--format", "json")
    data = json.loads(out)
    assert set(data) >= {"findings", "summary", "errors"}
    f = next(f for f in data["findings"] if f["code"] == "LC601")
    assert set(f) >= {"code", "name", "severity", "file", "line", "key", "message"}
    assert f["key"] == "caption_extention" and f["line"] == 10 and f["name"] == "misspelled-legacy-key"
    assert data["summary"]["findings"] == len(data["findings"])
    assert data["summary"]["by_code"]["LC105"] == 1


def test_sarif_structure() -> None:
    _, out, _ = run("lint", str(BAD_TOML), str(BAD_JSON), "--format", "sarif")
    log = json.loads(out)
    assert log["version"] == "2.1.0" and "sarif" in log["$schema"]
    run0 = log["runs"][0]
    driver = run0["tool"]["driver"]
    assert driver["name"] == "lora-compat"
    ids = [r["id"] for r in driver["rules"]]
    from lora_compat.lint.registry import all_rules

    assert ids == [r.code for r in all_rules()]        # every rule declared, even those that did not fire
    for r in driver["rules"]:
        assert r["name"] and r["shortDescription"]["text"] and r["fullDescription"]["text"]
        assert r["helpUri"].split("#")[0].endswith("docs/rules.md") and "#lc" in r["helpUri"]
    assert run0["results"]
    for res in run0["results"]:
        assert res["ruleId"] in ids and ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
        assert res["message"]["text"]
        phys = res["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"]["uri"]
        if "region" in phys:
            assert phys["region"]["startLine"] >= 1
    lc105 = next(r for r in run0["results"] if r["ruleId"] == "LC105")
    assert lc105["locations"][0]["physicalLocation"]["region"]["startLine"] == 8
    assert lc105["level"] == "error"


def test_github_annotations() -> None:
    code, out, _ = run("lint", str(BAD_TOML), "--format", "github")
    assert code == 1
    lines = out.strip().splitlines()
    assert lines and all(ln.startswith(("::error ", "::warning ", "::notice ")) for ln in lines)
    lc105 = next(ln for ln in lines if "LC105" in ln)
    assert lc105.startswith("::error file=") and ",line=8," in lc105 and "::lr_warmup_steps: " in lc105


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_no_credential_in_any_output_format(fmt: str) -> None:
    _, out, err = run("lint", str(BAD_TOML), str(BAD_JSON), "--format", fmt)
    assert any(c in out for c in ("LC501", "credential-in-config"))
    for s in SECRETS:
        assert s not in out and s not in err


# -- fixes -----------------------------------------------------------------------------------------------

def test_fix_writes_new_file_in_original_format(work: Path) -> None:
    src = work / "sdscripts_bad.toml"
    before = src.read_text(encoding="utf-8")
    _, out, _ = run("lint", str(src), "--fix")
    assert src.read_text(encoding="utf-8") == before           # input never modified
    fixed = (work / "sdscripts_bad.fixed.toml").read_text(encoding="utf-8")
    assert 'resolution = "1024,1024"' in fixed and 'save_model_as = "safetensors"' in fixed
    assert "caption_extension = " in fixed and "caption_extention" not in fixed
    assert "# must be a string" in fixed                         # comments kept
    assert SECRETS[0] not in fixed
    assert "[fixed]" in out
    # re-linting the fixed file: the fixed findings are gone, the unfixable ones remain
    _, out2, _ = run("lint", str(work / "sdscripts_bad.fixed.toml"), "--format", "json")
    left = {f["code"] for f in json.loads(out2)["findings"]}
    assert not left & {"LC106", "LC506", "LC601", "LC501"} and "LC105" in left


def test_fix_json_keeps_formatting(work: Path) -> None:
    src = work / "kohya_sdxl_bad.json"
    out_path = work / "out.json"
    run("lint", str(src), "--fix", "-o", str(out_path))
    text = out_path.read_text(encoding="utf-8")
    assert SECRETS[1] not in text and '"wandb_api_key": ""' in text
    assert '"text_encoder_lr": 0.00005' in text                    # untouched lines keep their spelling
    assert len(text.splitlines()) == len(src.read_text(encoding="utf-8").splitlines())


def test_fixed_copy_never_contains_credentials_even_when_lc501_is_not_selected(work: Path) -> None:
    src = work / "sdscripts_bad.toml"
    run("lint", str(src), "--fix", "--select", "LC506")
    text = (work / "sdscripts_bad.fixed.toml").read_text(encoding="utf-8")
    assert 'save_model_as = "safetensors"' in text and SECRETS[0] not in text
    assert "caption_extention" in text                          # LC601 was not selected: not fixed


def test_fix_in_place_keeps_backup(work: Path) -> None:
    src = work / "sdscripts_bad.toml"
    before = src.read_text(encoding="utf-8")
    src.chmod(0o640)
    run("lint", str(src), "--fix", "--in-place")
    assert (work / "sdscripts_bad.toml.bak").read_text(encoding="utf-8") == before
    assert 'save_model_as = "safetensors"' in src.read_text(encoding="utf-8")
    assert src.stat().st_mode & 0o777 == 0o640      # the rewritten file keeps its permissions


def test_fixed_copy_is_readable_like_a_normal_file(work: Path) -> None:
    # a temp-file writer leaves mkstemp's 0o600 behind; a fixed copy must be an ordinary 0o644 file
    run("lint", str(work / "sdscripts_bad.toml"), "--fix")
    assert (work / "sdscripts_bad.fixed.toml").stat().st_mode & 0o777 == 0o644
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_fix_exit_code_counts_only_unfixed(work: Path) -> None:
    src = work / "sdscripts_bad.toml"
    assert run("lint", str(src), "--select", "LC506,LC601", "--fail-on", "warning", "--fix")[0] == 0


# -- explain ---------------------------------------------------------------------------------------------

def test_explain_rule_by_code_and_name() -> None:
    code, out, _ = run("explain", "LC205")
    assert code == 0 and "keep-tokens-no-effect" in out and "Anti-pattern" in out and "Best practice" in out
    code, out, _ = run("explain", "alpha-default-one", "--format", "json")
    data = json.loads(out)
    assert data["code"] == "LC202" and data["help_uri"].endswith("#lc202-alpha-default-one")


def test_explain_option_and_alias() -> None:
    code, out, _ = run("explain", "keep_tokens")
    assert code == 0 and "keep_tokens" in out
    code, out, _ = run("explain", "shuffle_captions", "--format", "json")
    assert code == 0 and json.loads(out)["name"] == "shuffle_caption"
    # an option as written on a command line (docs/cli.md promises it): not taken for an option of explain
    code, out, _ = run("explain", "--network_dim", "--format", "json")
    assert code == 0 and json.loads(out)["name"] == "network_dim"


def test_explain_list_and_unknown() -> None:
    code, out, _ = run("explain", "--list", "--format", "json")
    rules = json.loads(out)["rules"]
    assert code == 0 and len(rules) >= 40 and rules[0]["code"] == "LC101"
    assert rules[0]["groups"][0] == "schema" and rules[0]["dotted_name"] == "schema.invalid_value"
    code, out, _ = run("explain", "--list")
    assert code == 0 and "groups" in out
    assert run("explain", "no_such_thing_xyz")[0] == 2
    code, _, err = run("explain", "LC999")
    assert code == 2 and "unknown rule 'LC999'" in err


def test_explain_dotted_name_group_split_code_and_reader_note() -> None:
    code, out, _ = run("explain", "network.alpha_default_one", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["code"] == "LC202" and data["name"] == "alpha-default-one"
    assert data["groups"] == ["network"]
    code, out, _ = run("explain", "group:caches", "--format", "json")
    assert code == 0 and {r["code"] for r in json.loads(out)["rules"]} == {"LC209", "LC210", "LC211", "LC212"}
    assert run("explain", "group:nope")[0] == 2
    code, out, _ = run("explain", "LC605", "--format", "json")
    assert code == 0 and {"LC617", "LC622"} <= {r["code"] for r in json.loads(out)["rules"]}
    # every reader note code is explainable: its meaning and the rule that reports it
    from lora_compat.config.notes import NOTE_CODES

    for note in NOTE_CODES:
        code, out, _ = run("explain", note, "--format", "json")
        data = json.loads(out)
        if "note" not in data:       # "duplicate-key" is also the name of the rule that reports it (LC113)
            assert code == 0 and note in data["note_codes"], note
            continue
        assert code == 0 and data["note"] == note and data["description"] == NOTE_CODES[note], note
    code, out, _ = run("explain", "kohya-gui-other-architecture")
    assert code == 0 and "LC412" in out and "another architecture" in out   # the family rule names it


def test_cli_never_imports_torch() -> None:
    script = ("import sys\nfrom lora_compat.cli import main\n"
              "try:\n    main(['lint', sys.argv[1], '--format', 'json'])\nexcept SystemExit:\n    pass\n"
              "bad = [m for m in ('torch', 'diffusers', 'peft', 'transformers', 'accelerate', 'safetensors.torch')"
              " if m in sys.modules]\nprint('HEAVY', bad, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(BAD_JSON)], capture_output=True, text=True,
                          timeout=120)
    assert "HEAVY []" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_real_entry_point_one_line_error_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lora_compat", "lint", str(tmp_path / "nope.toml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "nope.toml" in proc.stderr


def test_glob_and_folder_expansion(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    shutil.copy(CLEAN, tmp_path / "a" / "one.toml")
    shutil.copy(BAD_TOML, tmp_path / "a" / "two.toml")
    (tmp_path / "a" / "caption.txt").write_text("1girl, solo", encoding="utf-8")
    _, out, _ = run("lint", str(tmp_path / "a"), "--format", "json")
    assert sorted(f["file"].rsplit("/", 1)[-1] for f in json.loads(out)["files"]) == ["one.toml", "two.toml"]
    _, out, _ = run("lint", str(tmp_path / "a" / "t*.toml"), "--format", "json")
    assert [f["file"].rsplit("/", 1)[-1] for f in json.loads(out)["files"]] == ["two.toml"]
    assert run("lint", str(tmp_path / "a" / "zz*.toml"))[0] == 2
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "caption.txt").write_text("1girl", encoding="utf-8")
    code, _, err = run("lint", str(tmp_path / "empty"))
    assert code == 2 and "no config files" in err  # never "All checks passed (0 files)" for a wrong folder


def test_inline_suppression_comments(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        "# lora-compat: ignore-file[LC506]\n"
        'network_module = "networks.lora"\n'
        "network_dim = 64                 # lora-compat: ignore[LC202]\n"
        'resolution = "512,512"\n'
        'save_model_as = "pt"\n'
        "learning_rate = 1e-4\n"
        'lr_scheduler = "cosine"\n'
        "lr_scheduler_power = 2.0         # lora-compat: ignore\n"
        "lr_scheduler_num_cycles = 3\n", encoding="utf-8")
    code, out, _ = run("lint", str(cfg), "--format", "json", "--fail-on", "info")
    data = json.loads(out)
    assert [f["code"] for f in data["findings"]] == ["LC216"]       # only the unsuppressed line 9 remains
    assert data["summary"]["suppressed"] == 3 and code == 1


def test_exit_zero_statistics_and_output_format_alias() -> None:
    code, out, _ = run("lint", str(BAD_TOML), "--exit-zero", "--statistics")
    assert code == 0
    assert any(line.split()[1:] == ["LC105", "warmup-float-steps"] for line in out.splitlines()
               if line.strip().startswith("1 "))
    code, out, _ = run("lint", str(BAD_TOML), "--output-format", "json")
    assert code == 1 and json.loads(out)["summary"]["findings"] > 0
    assert run("lint", str(BAD_TOML), "nope_missing.toml", "--exit-zero")[0] == 2


def test_explain_family_prefix_lists_that_family() -> None:
    code, out, _ = run("explain", "LC5", "--format", "json")
    codes = [r["code"] for r in json.loads(out)["rules"]]
    assert code == 0 and codes and all(c.startswith("LC5") for c in codes)
    assert run("explain", "LC9")[0] == 2


def test_lint_paths_reports_progress_per_file() -> None:
    from lora_compat.lint.registry import all_rules
    from lora_compat.lint.runner import lint_paths

    seen: list[str] = []
    report = lint_paths([str(CLEAN), str(BAD_TOML)], all_rules(), progress=seen.append)
    assert seen == [str(CLEAN), str(BAD_TOML)] and len(report.results) == 2


def test_fix_keeps_bom_and_crlf(tmp_path: Path) -> None:
    # files saved by Windows editors: the fixed copy differs only where a fix applies
    src = tmp_path / "win.json"
    src.write_bytes(b'\xef\xbb\xbf{\r\n  "LoRA_type": "Standard",\r\n  "max_resolution": "512,512",\r\n'
                    b'  "caption_extention": ".txt",\r\n  "wandb_api_key": "abcdef123456789"\r\n}\r\n')
    code, out, _ = run("lint", str(src), "--fix")
    assert code != 2, out
    fixed = (tmp_path / "win.fixed.json").read_bytes()
    assert fixed == src.read_bytes().replace(b'"caption_extention"', b'"caption_extension"').replace(
        b'"abcdef123456789"', b'""')
    toml = tmp_path / "win.toml"
    toml.write_bytes(b'pretrained_model_name_or_path = "m"\r\nsave_model_as = "bin"\r\nresolution = 512\r\n')
    run("lint", str(toml), "--fix")
    assert (tmp_path / "win.fixed.toml").read_bytes() == (b'pretrained_model_name_or_path = "m"\r\n'
                                                        b'save_model_as = "safetensors"\r\nresolution = "512,512"\r\n')


def test_sarif_uris_are_percent_encoded(tmp_path: Path) -> None:
    # most kohya_ss presets have spaces in their names ("SDXL - LoRA adafactor v1.0.json")
    src = tmp_path / "my preset #1.toml"
    shutil.copy(BAD_TOML, src)
    _, out, _ = run("lint", str(src), "--format", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris and all(" " not in u and "#" not in u and u.endswith("my%20preset%20%231.toml") for u in uris)
