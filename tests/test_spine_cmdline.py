"""Command-line files: tokenizing (.bat/.sh/.ps1/.txt), finding the invocation, reading into canonical options."""

from __future__ import annotations

import pytest

from lora_compat.config.cmdline import (
    ArgparseError,
    Token,
    int_or_float,
    is_windows_script,
    parse_command_file,
    parse_sd_scripts_args,
    split_commands,
)
from lora_compat.config.load import detect, load_config
from lora_compat.config.model import DERIVED, RENAMED
from lora_compat.errors import UserError

from shared_data import FIXTURES

CMD = FIXTURES / "spine" / "cmdline"


def words(text: str, windows: bool) -> list[list[str]]:
    return [[t.text for t in c] for c in split_commands(text, windows=windows)]


def test_windows_quoting_keeps_backslashes_and_joins_caret_lines() -> None:
    text = 'python "C:\\sd scripts\\train_network.py" ^\n  --output_dir="C:\\out dir" ^\n  --xformers\n'
    assert words(text, True) == [["python", "C:\\sd scripts\\train_network.py", "--output_dir=C:\\out dir",
                                  "--xformers"]]


def test_posix_quoting_and_backslash_continuation() -> None:
    text = "accelerate launch train_network.py \\\n  --output_name='my lora' \\\n  --a=\"x\\\"y\" # c\n"
    assert words(text, False) == [["accelerate", "launch", "train_network.py", "--output_name=my lora",
                                   '--a=x"y']]


def test_powershell_backtick_and_comments() -> None:
    text = "# comment\nREM also\npython train_network.py `\n  --xformers\n"
    assert words(text, True) == [["python", "train_network.py", "--xformers"]]


def test_unterminated_quote_is_a_user_error(tmp_path) -> None:
    p = tmp_path / "x.sh"
    p.write_text('python train_network.py --output_dir="/o\n')
    with pytest.raises(UserError, match="unterminated \" quote") as info:
        load_config(str(p))
    assert (info.value.line, info.value.col) == (1, 38)


def test_windows_detection_by_suffix_and_content() -> None:
    assert is_windows_script("a.bat", "")
    assert not is_windows_script("a.sh", "C:\\x")
    assert is_windows_script("a.txt", "python x.py ^\n --a")
    assert not is_windows_script("a.txt", "python x.py \\\n --a")


def test_batch_file_reads_every_option() -> None:
    cfg = load_config(str(CMD / "train_sdxl.bat"))
    assert cfg.dialect == "command-line"
    assert cfg.get("sdxl") is True and cfg.options["sdxl"].prov.kind == DERIVED
    assert cfg.get("pretrained_model_name_or_path") == "C:\\models\\sd_xl_base_1.0.safetensors"  # %MODEL%
    assert cfg.get("train_data_dir") == "C:\\data\\my images"
    assert cfg.get("network_dim") == 32
    assert cfg.get("network_alpha") == 16.0 and isinstance(cfg.get("network_alpha"), float)
    assert cfg.options["network_alpha"].prov.kind == RENAMED  # --network_alp abbreviation
    assert cfg.get("optimizer_args") == ["weight_decay=0.01", "betas=(0.9,0.99)"]
    assert cfg.get("lr_warmup_steps") == pytest.approx(0.1)  # 10%% in a .bat is 10%
    assert cfg.get("cache_text_encoder_outputs") is True  # sdxl-only flag accepted for sdxl script
    assert "mixed_precision" not in cfg.options  # accelerate's flag does not reach sd-scripts
    assert "accelerate-mixed-precision" in {n.code for n in cfg.notes}
    assert {f.key for f in cfg.frontend_only} == {"accelerate:num_cpu_threads_per_process",
                                                  "accelerate:mixed_precision"}
    o = cfg.locate("network_dim")
    assert (o.line, o.key) == (10, "--network_dim")


def test_shell_file_merges_config_file_under_command_line() -> None:
    cfg = load_config(str(CMD / "train.sh"))
    assert cfg.get("network_dim") == 64            # command line wins over the TOML's 16
    assert cfg.locate("network_dim").key == "--network_dim"
    assert cfg.get("network_alpha") == 8           # from the TOML, type kept (int)
    assert type(cfg.get("network_alpha")) is int
    assert cfg.locate("network_alpha").file.endswith("base_config.toml")
    assert cfg.locate("network_alpha").key == "network.network_alpha"
    assert cfg.get("output_dir") == "/tmp/out"     # $OUT expanded
    assert cfg.get("text_encoder_lr") == [5e-05, 1e-05]
    assert [u.key for u in cfg.unknown_keys] == ["typo_option"]
    # dataset_config inside the --config_file is read relative to that file
    assert len(cfg.datasets) == 1 and len(cfg.datasets[0].subsets) == 2
    assert cfg.datasets[0].subsets[1].get("is_reg") is True
    assert any(f.endswith("dataset.toml") for f in cfg.files)


def test_powershell_python_m_accelerate() -> None:
    cfg = load_config(str(CMD / "train.ps1"))
    assert cfg.get("resolution") == "768,512"
    assert cfg.get("max_train_epochs") == 10
    assert cfg.get("sdxl") is False
    assert "kohya-folder-missing" in {n.code for n in cfg.notes}


def test_text_file_with_kohya_folders() -> None:
    cfg = load_config(str(CMD / "command.txt"))
    subs = [s for _, _, _, s in cfg.iter_subsets()]
    got = sorted((s.get("num_repeats"), s.get("class_tokens"), bool(s.get("is_reg"))) for s in subs)
    assert got == [(1, "dog", True), (3, "my_cat", False), (10, "sks dog", False)]
    assert "kohya-folder-skipped" in {n.code for n in cfg.notes}  # img/notes has no N_ prefix


def test_other_training_script_is_refused() -> None:
    with pytest.raises(UserError) as info:
        load_config(str(CMD / "train_db.sh"))
    assert "runs train_db.py (DreamBooth full fine-tuning), not LoRA training" in str(info.value)
    assert info.value.line == 1


@pytest.mark.parametrize("name, message, line", [
    ("bad_choice.sh", "invalid choice: 'fp8' (choose from 'no', 'fp16', 'bf16')", 2),
    ("ambiguous.sh", "ambiguous option: --lr_sched could match --lr_scheduler_type", 1),
])
def test_what_argparse_refuses_is_marked_invalid_not_a_load_error(name: str, message: str, line: int) -> None:
    """sd-scripts would refuse these command lines: the rest is still read and the refusal is an invalid value
    (show marks it and exits 1, lint reports it) at the word's line."""
    cfg = load_config(str(CMD / name))
    assert len(cfg.invalid) == 1
    bad = cfg.invalid[0]
    assert message in bad.reason and "sd-scripts would refuse" in bad.reason
    assert bad.origin.line == line


def test_refused_words_do_not_hide_the_rest(tmp_path) -> None:
    p = tmp_path / "x.sh"
    p.write_text("python train_network.py --network_dim 8 --lr_sched cosine --mixed_precision fp8 --typo 1 "
                 "--network_alpha abc --seed 3\n")
    cfg = load_config(str(p))
    assert (cfg.get("network_dim"), cfg.get("seed")) == (8, 3)
    reasons = sorted(i.reason.split(": ", 1)[1] for i in cfg.invalid)
    assert reasons[0].startswith("ambiguous option: --lr_sched could match --lr_scheduler_type, ")
    assert reasons[1:] == [
                       "argument --mixed_precision: invalid choice: 'fp8' (choose from 'no', 'fp16', 'bf16')",
                       "argument --network_alpha: invalid float value: 'abc'",
                       "unrecognized arguments: --typo 1"]
    assert {i.option for i in cfg.invalid} >= {"mixed_precision", "network_alpha"}


def test_no_training_command_found(tmp_path) -> None:
    p = tmp_path / "x.sh"
    p.write_text("echo hello\nls -la\n")
    with pytest.raises(UserError, match="no LoRA training command"):
        load_config(str(p))


def test_argparse_details() -> None:
    def parse(*argv: str, sdxl: bool = False) -> dict:
        return parse_sd_scripts_args([Token(a, 1, i) for i, a in enumerate(argv)], sdxl=sdxl).values()

    assert parse("--network_dim=8", "--network_dim", "4") == {"network_dim": 4}  # last wins
    assert parse("--network_args") == {"network_args": []}  # nargs * with nothing
    with pytest.raises(ArgparseError, match="expected one argument"):
        parse("--network_dim", "--xformers")
    with pytest.raises(ArgparseError, match="ignored explicit argument 'true'"):
        parse("--xformers=true")
    with pytest.raises(ArgparseError, match="unrecognized arguments: --cache_text_encoder_outputs"):
        parse("--cache_text_encoder_outputs")  # SDXL-only flag on train_network.py
    assert parse("--cache_text_encoder_outputs", sdxl=True) == {"cache_text_encoder_outputs": True}
    assert parse("--seed", "-1") == {"seed": -1}  # negative numbers are values
    # "--" ends the options (messages as Python 3.11's argparse prints them)
    with pytest.raises(ArgparseError, match=r"unrecognized arguments: -- a$"):
        parse("--xformers", "--", "a")
    with pytest.raises(ArgparseError, match=r"unrecognized arguments: -- --xformers$"):
        parse("--", "--xformers")
    with pytest.raises(ArgparseError, match="argument --network_dim: expected one argument"):
        parse("--network_dim", "--", "4")


def test_flux_argparse_abbreviations_are_per_script() -> None:
    def parse(*argv: str, script: str) -> dict:
        return parse_sd_scripts_args([Token(a, 1, i) for i, a in enumerate(argv)], script=script).values()

    flux, sd = "flux_train_network.py", "train_network.py"
    # a prefix that is unique in train_network.py's parser is ambiguous once flux_train_network.py adds options
    assert parse("--clip", "2", script=sd) == {"clip_skip": 2}
    with pytest.raises(ArgparseError, match="ambiguous option: --clip could match --clip_skip, --clip_l"):
        parse("--clip", "2", script=flux)
    assert parse("--text_encoder", "1e-5", script=sd) == {"text_encoder_lr": [1e-5]}
    with pytest.raises(ArgparseError, match="could match --text_encoder_lr, --text_encoder_batch_size"):
        parse("--text_encoder", "1e-5", script=flux)
    with pytest.raises(ArgparseError, match="could match --weighted_captions, --weighting_scheme"):
        parse("--weight", script=flux)
    # FLUX's own options: types, choices, flags, and its prefixes
    assert parse("--guidance", "1", "--discrete_flow", "3.1582", "--t5xxl_max", "256", "--apply_t5",
                 "--timestep_sampling", "shift", "--model_type", "chroma", script=flux) == {
        "guidance_scale": 1.0, "discrete_flow_shift": 3.1582, "t5xxl_max_token_length": 256,
        "apply_t5_attn_mask": True, "timestep_sampling": "shift", "model_type": "chroma"}
    assert parse("--t5xxl", "t5.safetensors", script=flux) == {"t5xxl": "t5.safetensors"}   # exact beats prefix
    with pytest.raises(ArgparseError, match="argument --model_prediction_type: invalid choice: 'sigma'"):
        parse("--model_prediction_type", "sigma", script=flux)
    with pytest.raises(ArgparseError, match="ambiguous option: --mode could match --mode_scale, "
                                            "--model_prediction_type, --model_type"):
        parse("--mode", "raw", script=flux)
    with pytest.raises(ArgparseError, match="unrecognized arguments: --guidance_scale 1"):
        parse("--guidance_scale", "1", script="sdxl_train_network.py")
    # the options sdxl_train_network.py and flux_train_network.py share
    assert parse("--cache_text_encoder_outputs_to_disk", script=flux) == {"cache_text_encoder_outputs_to_disk": True}


def test_flux_command_line_reads_into_canonical_options(tmp_path) -> None:
    p = tmp_path / "train_flux.sh"
    p.write_text("accelerate launch --mixed_precision bf16 flux_train_network.py \\\n"
                 "  --pretrained_model_name_or_path flux1-dev.safetensors --clip_l clip_l.safetensors \\\n"
                 "  --t5xxl t5xxl_fp16.safetensors --ae ae.safetensors --network_module networks.lora_flux \\\n"
                 "  --network_dim 16 --network_train_unet_only --guidance 1.0 --timestep_sampling flux_shift \\\n"
                 "  --model_prediction_type raw --blocks_to_swap 18 --network_args train_t5xxl=True \\\n"
                 "  --fp8_base_unet --text_encoder_lr 1e-5 5e-6\n")
    cfg = load_config(str(p))
    assert cfg.family == "flux1" and cfg.dialect == "command-line"
    assert not cfg.unknown_keys
    assert cfg.get("guidance_scale") == 1.0 and cfg.locate("guidance_scale").key == "--guidance_scale"
    assert "abbreviation" in cfg.options["guidance_scale"].prov.conversion
    assert (cfg.get("timestep_sampling"), cfg.get("model_prediction_type"), cfg.get("blocks_to_swap")) == (
        "flux_shift", "raw", 18)
    assert cfg.get("text_encoder_lr") == [1e-5, 5e-6] and cfg.get("network_args") == ["train_t5xxl=True"]
    assert cfg.effective("discrete_flow_shift") == 3.0 and cfg.effective("apply_t5_attn_mask") is False


def test_int_or_float() -> None:
    assert int_or_float("10") == 10 and isinstance(int_or_float("10"), int)
    assert int_or_float("0.1") == 0.1 and int_or_float("0") == 0.0 and isinstance(int_or_float("0"), float)
    assert int_or_float("5%") == pytest.approx(0.05)
    for bad in ("1.0", "1e2", "abc"):
        with pytest.raises(ArgparseError):
            int_or_float(bad)


def test_document_positions_for_command_lines() -> None:
    doc = parse_command_file("x.sh", "python train_network.py \\\n  --network_dim 8 \\\n  --xformers\n")
    assert doc.positions["--network_dim"] == (2, 3)
    assert doc.origin("--xformers").line == 3
    assert detect(str(CMD / "train.sh")).dialect == "command-line"


def test_pasted_text_without_continuations(tmp_path) -> None:
    p = tmp_path / "pasted.txt"
    p.write_text("python train_network.py\n--network_dim 8\n--xformers\n")
    cfg = load_config(str(p))
    assert cfg.get("network_dim") == 8 and cfg.get("xformers") is True
    sh = tmp_path / "pasted.sh"  # in a real script those lines are separate (failing) commands
    sh.write_text("python train_network.py\n--network_dim 8\n")
    assert load_config(str(sh)).get("network_dim") is None


def test_powershell_env_variables_are_substituted(tmp_path) -> None:
    p = tmp_path / "train.ps1"
    p.write_text('$env:MODEL = "C:\\models\\sd15.safetensors"\r\n$OUT = "D:\\out"\r\n'
                 'accelerate launch train_network.py `\r\n  --pretrained_model_name_or_path="$env:MODEL" `\r\n'
                 '  --output_dir "${OUT}" --network_module networks.lora --logging_dir "$env:UNSET" `\r\n'
                 '  --output_name "${env:OUT}"\r\n', encoding="utf-8")
    cfg = load_config(str(p))
    assert cfg.get("pretrained_model_name_or_path") == "C:\\models\\sd15.safetensors"
    assert cfg.get("output_dir") == "D:\\out"
    # $env:X and $X are different PowerShell variables; one the script never sets is unknown, not guessed
    assert "logging_dir" not in cfg.options and "output_name" not in cfg.options
    notes = [n for n in cfg.notes if n.code == "shell-expression-unresolved"]
    assert [n.message for n in notes] == [
        "unresolved shell expression `$env:UNSET` in --logging_dir: value unknown (the option is left unset)",
        "unresolved shell expression `${env:OUT}` in --output_name: value unknown (the option is left unset)"]
