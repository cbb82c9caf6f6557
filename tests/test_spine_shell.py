"""Shell scripts as people write them (issue #10 item 5): variables, arrays, substitutions, continuations,
several commands — read as far as the script says, the rest a note "value unknown", never a refusal."""

from __future__ import annotations

import pytest
from test_spine_load import run_cli

from lora_compat.config.load import load_config
from lora_compat.config.shell import MAX_VALUE_CHARS, evaluate_script, safe_int_arith
from lora_compat.errors import UserError

from shared_data import FIXTURES

SCRIPTS = FIXTURES / "spine" / "scripts"


def words(path: str, text: str) -> list[list[str]]:
    return [[t.text for t in c] for c in evaluate_script(path, text).commands]


def unresolved(cfg) -> list[str]:
    return [n.message for n in cfg.notes if n.code == "shell-expression-unresolved"]


# ------------------------------------------------------------------------------------------- sh / bash
def test_bash_arrays_defaults_and_word_splitting() -> None:
    text = ('MODEL=/m/x.safetensors   # base\n'
            'args=(\n  --pretrained_model_name_or_path="$MODEL"  # comment inside\n  --output_name "my lora"\n)\n'
            'EXTRA="--xformers --cache_latents"\nOUT=${OUT_DIR:-/tmp/out}\nN=$((40 + 2))\n'
            'accelerate launch train_network.py "${args[@]}" $EXTRA --output_dir=$OUT --seed $N "$EXTRA"\n')
    assert words("a.sh", text) == [["accelerate", "launch", "train_network.py",
                                     "--pretrained_model_name_or_path=/m/x.safetensors", "--output_name", "my lora",
                                     "--xformers", "--cache_latents", "--output_dir=/tmp/out", "--seed", "42",
                                     "--xformers --cache_latents"]]


def test_array_elements_keep_their_own_lines(tmp_path) -> None:
    p = tmp_path / "t.sh"
    p.write_text('ARGS=(\n  --network_dim 16\n  --network_alpha 8\n)\naccelerate launch train_network.py '
                 '"${ARGS[@]}"\n')
    cfg = load_config(str(p))
    assert (cfg.get("network_dim"), cfg.get("network_alpha")) == (16, 8.0)
    assert (cfg.locate("network_dim").line, cfg.locate("network_alpha").line) == (2, 3)


def test_substitutions_and_unknown_variables_are_notes_not_refusals(tmp_path) -> None:
    p = tmp_path / "t.sh"
    p.write_text('accelerate launch train_network.py --output_name="lora_$(date +%s)" --max_train_epochs $EPOCHS '
                 '--network_dim 8 --logging_dir=`pwd`/logs $EXTRA_ARGS "$@"\n')
    cfg = load_config(str(p))
    assert not cfg.invalid and cfg.get("network_dim") == 8
    for name in ("output_name", "max_train_epochs", "logging_dir"):
        assert name not in cfg.options
    msgs = unresolved(cfg)
    assert ("unresolved shell expression `$(date +%s)` in --output_name: value unknown (the option is left unset)"
            in msgs)
    assert any("`$EPOCHS` in --max_train_epochs" in m for m in msgs)
    assert any("`` `pwd` `` in --logging_dir" in m or "``pwd``" in m or "`pwd`" in m for m in msgs)
    assert any(m.startswith("unresolved shell expression `$EXTRA_ARGS`: value unknown") for m in msgs)
    assert any("`$@`" in m for m in msgs)
    code, out, err = run_cli("show", str(p))
    assert code == 0 and "would refuse" not in out + err


def test_conda_run_and_prefix_assignments_are_not_accelerate_options(tmp_path) -> None:
    p = tmp_path / "t.sh"
    p.write_text("CUDA_VISIBLE_DEVICES=0 conda run -n kohya accelerate launch --num_processes 1 "
                 "sdxl_train_network.py --network_dim 4\n")
    cfg = load_config(str(p))
    assert cfg.get("sdxl") is True and cfg.get("network_dim") == 4
    assert [f.key for f in cfg.frontend_only] == ["accelerate:num_processes"]


def test_script_path_in_a_variable(tmp_path) -> None:
    p = tmp_path / "t.sh"
    p.write_text('SD=./sd-scripts\nSCRIPT="$SD/sdxl_train_network.py"\naccelerate launch "$SCRIPT" --network_dim 4\n')
    cfg = load_config(str(p))
    assert cfg.get("sdxl") is True and cfg.get("network_dim") == 4


def test_several_training_commands_read_the_last_and_list_the_others(tmp_path) -> None:
    p = tmp_path / "t.sh"
    p.write_text("accelerate launch train_network.py --network_dim 4\n"
                 "echo between\n"
                 "accelerate launch sdxl_train_network.py --network_dim 8\n")
    cfg = load_config(str(p))
    assert cfg.get("network_dim") == 8 and cfg.get("sdxl") is True
    (note,) = [n for n in cfg.notes if n.code == "several-training-commands"]
    assert "train_network.py on line 1" in note.message and "(line 3)" in note.message


# ------------------------------------------------------------------------------------------- PowerShell
def test_powershell_comments_arrays_splatting_and_call_operator(tmp_path) -> None:
    p = tmp_path / "t.ps1"
    p.write_text('$python = "venv\\Scripts\\python.exe"  # the venv\n'
                 "$epochs = 10\n"
                 '$extra = @("--xformers",\n  "--cache_latents")\n'
                 "$more = '--network_dim', '16'\n"
                 "& $python -m accelerate.commands.launch --num_cpu_threads_per_process 2 train_network.py `\n"
                 "  --max_train_epochs $epochs `\n"
                 '  --output_name "run_$(Get-Date -Format yyyy)" `\n'
                 "  @extra $more\n")
    cfg = load_config(str(p))
    assert cfg.get("max_train_epochs") == 10 and cfg.get("network_dim") == 16
    assert cfg.get("xformers") is True and cfg.get("cache_latents") is True
    assert [f.key for f in cfg.frontend_only] == ["accelerate:num_cpu_threads_per_process"]
    assert unresolved(cfg) == ["unresolved shell expression `$(Get-Date -Format yyyy)` in --output_name: value "
                               "unknown (the option is left unset)"]


# ------------------------------------------------------------------------------------------- batch
def test_batch_set_a_quoted_set_delayed_expansion_and_script_folder(tmp_path) -> None:
    p = tmp_path / "t.bat"
    p.write_text("@echo off\nsetlocal enabledelayedexpansion\nset EPOCHS=4\nset /A STEPS=%EPOCHS%*100\n"
                 'set "MODEL=C:\\m x\\model.safetensors"\nset SCRIPT=%~dp0sd-scripts\\sdxl_train_network.py\n'
                 'set /P NAME=Name of the LoRA: \n'
                 'accelerate launch "%SCRIPT%" --pretrained_model_name_or_path="%MODEL%" --max_train_steps=%STEPS% ^\n'
                 "  --lr_warmup_steps 10%% --seed !SEED! --output_name %NAME% --output_dir %1\n")
    cfg = load_config(str(p))
    assert cfg.get("sdxl") is True
    assert cfg.get("pretrained_model_name_or_path") == "C:\\m x\\model.safetensors"
    assert cfg.get("max_train_steps") == 400 and cfg.get("lr_warmup_steps") == pytest.approx(0.1)
    msgs = unresolved(cfg)
    assert [m.split(" in ")[1].split(":")[0] for m in msgs] == ["--seed", "--output_name", "--output_dir"]


def test_safe_arithmetic_evaluates_literals_only() -> None:
    assert safe_int_arith("(1 + 2) * 7 - 10 / 3 % 2") == 20
    assert safe_int_arith("-5 / 2") == -2          # truncates toward zero (cmd.exe and bash)
    for bad in ("__import__('os')", "1 +", "2 ** 3", "1/0", "9" * 30, "a + 1"):
        assert safe_int_arith(bad) is None


# ------------------------------------------------------------------------------------------- bounds
def test_self_doubling_variables_end_with_one_clear_error(tmp_path) -> None:
    p = tmp_path / "exp.sh"
    p.write_text("A0=x\n" + "".join(f"A{i}=$A{i - 1}$A{i - 1}\n" for i in range(1, 29))
                 + "accelerate launch train_network.py --output_name=$A28\n")
    with pytest.raises(UserError, match="grows beyond 1 MiB") as info:
        load_config(str(p))
    assert info.value.line is not None and info.value.line <= 22   # stopped at the first variable over 1 MiB
    arrays = tmp_path / "arr.sh"
    arrays.write_text("A=('' '')\n" + "A=(\"${A[@]}\" \"${A[@]}\")\n" * 40 + "accelerate launch train_network.py\n")
    with pytest.raises(UserError, match="grows beyond"):
        load_config(str(arrays))
    assert MAX_VALUE_CHARS == 1 << 20


def test_a_megabyte_command_line_is_read_in_linear_time(tmp_path) -> None:
    """A 1 MB word used to take 13.5 s (the tokenizer re-stripped the rest of the line per character). The
    bound checked here is generous (slow CI machines); the per-character work is what the test guards."""
    import time

    p = tmp_path / "long.sh"
    p.write_text("accelerate launch train_network.py --network_module=networks.lora --output_name="
                 + "x" * 1_000_000 + " --network_dim 8\n")
    start = time.perf_counter()
    cfg = load_config(str(p))
    assert time.perf_counter() - start < 10
    assert len(cfg.get("output_name")) == 1_000_000 and cfg.get("network_dim") == 8


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.iterdir()) if SCRIPTS.is_dir() else [])
def test_realistic_scripts_show_without_refusal(name: str) -> None:
    code, out, err = run_cli("show", str(SCRIPTS / name), "--format", "json")
    assert code == 0, err
    assert "would refuse" not in out + err


# ------------------------------------------------------------------------------------------- conditions
def test_conditions_the_script_decides_select_branches() -> None:
    """One-file launchers collect flags into arrays under if/else: the branch the settings select is taken."""
    sh = load_config(str(SCRIPTS / "lora_scripts_style.sh"))
    ps = load_config(str(SCRIPTS / "lora_scripts_style.ps1"))
    for cfg in (sh, ps):
        assert cfg.get("clip_skip") == 2 and "v2" not in cfg.options          # is_v2_model=0 -> the else branch
        assert cfg.get("log_with") == "tensorboard"
        assert "reg_data_dir" not in cfg.options and "network_weights" not in cfg.options   # empty: false
        assert "noise_offset" not in cfg.options                              # "0" / 0: the test is false
        assert not unresolved(cfg) and not cfg.invalid
        assert (cfg.get("network_dim"), cfg.get("max_train_epochs"), cfg.get("learning_rate")) == (32, 12, 1e-4)
    assert sh.get("optimizer_type") == "AdamW8bit" and sh.get("lr_scheduler_num_cycles") == 2
    # PowerShell: -eq compares strings case-insensitively; the string "0" is true, the number 0 false
    assert ps.get("optimizer_type") == "DAdaptation" and ps.get("optimizer_args") == ["decouple=True"]
    assert ps.get("network_dropout") == 0.1
    assert sh.locate("clip_skip").line == 40 and ps.locate("clip_skip").line == 27  # the append that set it


def test_a_branch_decided_at_run_time_makes_its_variables_unknown(tmp_path) -> None:
    p = tmp_path / "t.sh"
    p.write_text('extra=()\nif [ -f /etc/hostname ]; then extra+=("--xformers"); fi\nDIM=8\n'
                 'if command -v nvidia-smi; then DIM=16; fi\n'
                 'accelerate launch train_network.py --network_dim $DIM "${extra[@]}"\n')
    cfg = load_config(str(p))
    assert "network_dim" not in cfg.options and "xformers" not in cfg.options
    assert any("`$DIM` in --network_dim" in m for m in unresolved(cfg))
    assert any("`${extra[@]}`" in m for m in unresolved(cfg))


def test_realistic_fixture_values() -> None:
    blog = load_config(str(SCRIPTS / "blog_style.sh"))
    assert blog.get("sdxl") is True and blog.get("max_train_epochs") == 10
    assert blog.get("output_dir") == "/workspace/output"
    assert blog.get("optimizer_args") == ["scale_parameter=False", "relative_step=False", "warmup_init=False"]
    assert any("`$(date +%Y%m%d_%H%M)` in --output_name" in m for m in unresolved(blog))
    gui = load_config(str(SCRIPTS / "kohya_gui_console.txt"))
    assert gui.get("sdxl") is True and "config-file-missing" in {n.code for n in gui.notes}
    assert "accelerate:dynamo_backend" in {f.key for f in gui.frontend_only}
    bat = load_config(str(SCRIPTS / "windows_runs.bat"))
    assert (bat.get("max_train_epochs"), bat.get("save_every_n_epochs"), bat.get("network_dim")) == (8, 2, 64)
    assert bat.get("lr_warmup_steps") == pytest.approx(0.05)
    assert bat.get("train_data_dir") == str(SCRIPTS / "dataset")              # %~dp0 = the batch file's folder
    assert "several-training-commands" in {n.code for n in bat.notes}
