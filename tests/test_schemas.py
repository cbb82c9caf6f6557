"""The schemas are the one source of option meaning: check them against sd-scripts' golden behaviour.

Golden facts come from ../shared (cmdline_parse.json: parsed values and Python types of every option;
dataset_blueprints.json; seed 003's chatbot descriptions). Tests that need ../shared skip without it.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

from lora_compat.config import options
from lora_compat.config.model import CanonicalConfig, Origin, Provenance, Setting
from lora_compat.config.option_explain import explain_option_data, explain_option_text
from lora_compat.config.secrets import REDACTED, is_secret_key
from lora_compat.config.validate import validate_options, validate_values
from lora_compat.errors import UserError
from lora_compat.resources import load_schema, schema_names

from shared_data import SHARED, golden

PY_TO_JSON = {"bool": "boolean", "int": "integer", "float": "number", "str": "string", "list": "array",
              "NoneType": "null"}


def _types(spec: dict) -> list[str]:
    t = spec["type"]
    return t if isinstance(t, list) else [t]


def _cases() -> dict[str, dict]:
    return {c["name"]: c for c in golden("cmdline_parse.json")["cases"]}


# ------------------------------------------------------------------------------------------------ validity
@pytest.mark.parametrize("name", schema_names())
def test_every_schema_is_valid_draft_2020_12_with_id(name):
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema"
    assert schema.get("$id") == f"https://lora-compat.dev/schemas/{name}"


# ------------------------------------------------------------------------------------------ golden options
def test_every_golden_option_exists_with_matching_type():
    for case in _cases().values():
        for name, pytype in (case.get("types") or {}).items():
            if name == "unknown_key_here":  # a --config_file key sd-scripts keeps without knowing it
                assert not options.is_option(name)
                continue
            spec = options.spec(name)
            assert spec is not None, f"{case['name']}: option {name} missing from the schema"
            if case["name"] == "config_types_not_converted" and name in ("network_dim", "learning_rate",
                                                                        "max_train_epochs"):
                continue  # deliberately wrong TOML types; checked by test_validate_flags_unconverted_toml
            jt = PY_TO_JSON[pytype]
            allowed = _types(spec)
            assert jt in allowed or (jt == "integer" and "number" in allowed), (case["name"], name, pytype, allowed)
            assert options.accepted_by(name, case["script"]), f"{name} is not {case['script']}'s but parsed by it"


def test_sdxl_only_options_are_exactly_the_extra_sdxl_ones():
    cases = _cases()
    sd1 = set(cases["minimal"]["types"])
    sdxl = set(cases["sdxl_minimal"]["types"])
    extra = sdxl - sd1
    assert extra == {n for n in options.option_names() if options.is_sdxl_only(n)}
    # every argparse option of both scripts is in the schema, per script
    assert {n for n in options.option_names() if options.accepted_by(n, "train_network.py")} == sd1
    assert {n for n in options.option_names() if options.accepted_by(n, "sdxl_train_network.py")} == sdxl


# flux_train_network.py's setup_parser (sd-scripts 48d368f): train_network.setup_parser(), then
# train_util.add_dit_training_arguments, flux_train_utils.add_flux_train_arguments and --split_mode, in this order.
FLUX_ADDED = ["cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk", "text_encoder_batch_size",
              "disable_mmap_load_safetensors", "weighting_scheme", "logit_mean", "logit_std", "mode_scale",
              "blocks_to_swap", "clip_l", "t5xxl", "ae", "controlnet_model_name_or_path", "t5xxl_max_token_length",
              "apply_t5_attn_mask", "guidance_scale", "timestep_sampling", "sigmoid_scale", "model_prediction_type",
              "discrete_flow_shift", "model_type", "split_mode"]


def test_flux_script_option_space_and_registration_order():
    sd1 = set(_cases()["minimal"]["types"])
    flux = [n for n in options.option_names() if options.accepted_by(n, "flux_train_network.py")]
    assert set(flux) == sd1 | set(FLUX_ADDED)
    assert [n for n in flux if n not in sd1] == FLUX_ADDED     # argparse lists ambiguous matches in this order
    # the other scripts' parsers do not have the FLUX options
    for name in ("guidance_scale", "ae", "model_type", "split_mode", "t5xxl_max_token_length"):
        assert not options.accepted_by(name, "train_network.py")
        assert not options.accepted_by(name, "sdxl_train_network.py")


def test_per_family_defaults_and_effective():
    assert options.default("discrete_flow_shift") == 3.0
    assert options.default("discrete_flow_shift", "flux1") == 3.0
    assert options.default("discrete_flow_shift", "lumina2") == 6.0
    assert options.default("discrete_flow_shift", "hunyuan_image") == 5.0
    assert options.default("discrete_flow_shift", "anima") == 1.0
    assert options.default("timestep_sampling", "anima") == "sigmoid"
    assert options.default("model_prediction_type", "lumina2") == "raw"
    assert options.default("t5xxl_max_token_length", "sd3") == 256
    assert options.default("t5xxl_max_token_length", "flux1") is None   # 512 dev / 256 schnell at load time
    # an option the family's script does not have has no default there
    assert options.default("guidance_scale", "flux1") == 3.5
    assert options.default("guidance_scale", "sdxl") is None
    assert options.default("discrete_flow_shift", "sd3") is None
    assert options.recommended("guidance_scale", "flux1") == 1.0
    assert options.recommended("guidance_scale", "chroma") == 0.0
    flux = CanonicalConfig(dialect="sd-scripts-toml", source="x.toml", family="flux1")
    sdxl = CanonicalConfig(dialect="sd-scripts-toml", source="x.toml", family="sdxl")
    assert flux.effective("guidance_scale") == 3.5 and sdxl.effective("guidance_scale") is None
    assert flux.effective("cache_text_encoder_outputs") is False
    assert sdxl.effective("cache_text_encoder_outputs") is False
    sd1 = CanonicalConfig(dialect="sd-scripts-toml", source="x.toml", family="sd1")
    assert not sd1.effective("cache_text_encoder_outputs")
    flux.set("guidance_scale", 1.0)
    assert flux.effective("guidance_scale") == 1.0


def test_defaults_match_golden_with_python_type():
    case = _cases()["sdxl_minimal"]
    given = {a.split("=")[0].lstrip("-") for a in case["argv"] if a.startswith("--")}
    for name, value in case["args"].items():
        if name in given:
            continue
        d = options.default(name)
        if isinstance(value, float):
            assert isinstance(d, float) and math.isclose(d, value, rel_tol=1e-6), (name, d, value)
        else:
            assert d == value and type(d) is type(value), (name, d, value)  # network_alpha: int 1, not 1.0


def _golden_choices(error: str) -> list:
    inner = re.search(r"\(choose from (.*)\)$", error).group(1)
    return [None if x == "None" else (int(x) if x.isdigit() else x.strip("'")) for x in inner.split(", ")]


@pytest.mark.parametrize("case_name,option", [("bad_choice_mixed_precision", "mixed_precision"),
                                              ("bad_choice_save_model_as", "save_model_as"),
                                              ("max_token_length_75", "max_token_length")])
def test_cli_choices_match_argparse_error_text(case_name, option):
    error = _cases()[case_name]["error"]
    assert options.cli(option)["choices"] == _golden_choices(error)


def test_registration_order_matches_argparse_ambiguity_listing():
    error = _cases()["abbreviation_ambiguous"]["error"]
    listed = [x.lstrip("-") for x in error.split("could match ")[1].split(", ")]
    in_schema_order = [n for n in options.option_names() if n.startswith("lr_sched")]
    assert in_schema_order == listed


def test_cli_facts_are_consistent_with_json_types():
    for name in options.option_names():
        spec = options.spec(name)
        cli = options.cli(name)
        if options.is_pseudo(name):
            assert cli is None
            continue
        assert set(cli) == {"type", "action", "nargs", "choices", "const"}, name
        if cli["action"] == "store_true":
            assert spec["type"] == "boolean" and spec["default"] is False, name
        if cli["nargs"] == "*":
            assert "array" in _types(spec), name
        if cli["choices"]:
            assert {x for x in cli["choices"] if x is not None} <= set(spec["enum"]), name
    assert options.cli("lr_warmup_steps")["type"] == "int_or_float"
    assert options.cli("text_encoder_lr") == {"type": "float", "action": "store", "nargs": "*", "choices": None,
                                              "const": None}


def test_descriptions_groups_refs_present():
    for name in options.option_names():
        spec = options.spec(name)
        assert len(spec["description"]) > 20, name
        assert spec.get("x-group") and spec.get("x-ref"), name
    for key in options.dataset_param_names():
        spec = options.dataset_spec(key)
        assert len(spec["description"]) > 20 and spec["x-levels"], key


def test_secrets_and_security_annotations():
    secret_like = {n for n in options.option_names() if is_secret_key(n)}
    assert secret_like == set(options.secret_options()) == {"wandb_api_key", "huggingface_token"}
    for name in ("network_module", "optimizer_type", "lr_scheduler_type", "dataset_class"):
        assert "import" in options.security(name), name


def test_arch_annotations():
    assert options.applies_to("cache_text_encoder_outputs", "sdxl")
    assert options.applies_to("cache_text_encoder_outputs", "flux1")
    assert not options.applies_to("cache_text_encoder_outputs", "sd1")
    assert not options.applies_to("clip_skip", "sdxl") and options.applies_to("clip_skip", "sd2")
    # what flux_train_network.py overrides has no effect on FLUX.1
    for name in ("min_snr_gamma", "noise_offset", "v_parameterization", "zero_terminal_snr", "clip_skip"):
        assert not options.applies_to(name, "flux1") and not options.applies_to(name, "chroma"), name
    assert options.applies_to("guidance_scale", "flux1") and not options.applies_to("guidance_scale", "sdxl")
    assert options.applies_to("ip_noise_gamma", "flux1") and options.applies_to("network_dim", "flux1")
    assert options.applies_to("network_dim", "sdxl")
    assert options.since("resize_interpolation") == "2025-02-14"


# ------------------------------------------------------------------------------------------------ seed 003
# Seed-003 rows (Derrian ArgStore names) whose description is WRONG, with the canonical option they concern.
# (Rows judged right, or about front-end-only keys with no sd-scripts option, are not listed.)
SEED3_WRONG = {
    "img_folder": "train_data_dir", "change_output_name": "output_name",
    "caption_dropout_every_n_epochs": "caption_dropout_every_n_epochs",
    "caption_tag_dropout_rate": "caption_tag_dropout_rate", "net_dim": "network_dim", "alpha": "network_alpha",
    "scheduler": "lr_scheduler", "cosine_restarts": "lr_scheduler_num_cycles",
    "scheduler_power": "lr_scheduler_power", "warmup_lr_ratio": "lr_warmup_steps",
    "learning_rate": "learning_rate", "num_workers": "max_data_loader_n_workers",
    "persistent_workers": "persistent_data_loader_workers", "shuffle_captions": "shuffle_caption",
    "keep_tokens": "keep_tokens", "max_steps": "max_train_steps", "min_bucket_resolution": "min_bucket_reso",
    "max_bucket_resolution": "max_bucket_reso", "lora_model_for_resume": "network_weights",
    "save_state": "save_state", "load_previous_save_state": "resume", "training_comment": "training_comment",
    "text_only": "network_train_text_encoder_only", "reg_img_folder": "reg_data_dir", "clip_skip": "clip_skip",
    "test_seed": "seed", "prior_loss_weight": "prior_loss_weight", "gradient_acc_steps":
    "gradient_accumulation_steps", "mixed_precision": "mixed_precision", "save_precision": "save_precision",
    "save_as": "save_model_as", "max_clip_token_length": "max_token_length", "buckets": "enable_bucket",
    "xformers": "xformers", "vae": "vae", "no_meta": "no_metadata", "log_dir": "logging_dir",
    "bucket_reso_steps": "bucket_reso_steps", "v_parameterization": "v_parameterization",
}


def _seed3_rows() -> dict[str, str]:
    files = sorted((SHARED / "seeds").glob("003_*.txt")) if (SHARED / "seeds").is_dir() else []
    if not files:
        pytest.skip("seed 003 not found (../shared is not beside this clone)")
    rows = {}
    for line in files[0].read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if re.fullmatch(r"[a-z0-9_]+", key) and " " in line:
            rows.setdefault(key, line)
    return rows


def test_every_wrong_seed3_row_is_a_misconception_on_its_canonical_option():
    rows = _seed3_rows()
    for written, canonical in SEED3_WRONG.items():
        assert written in rows, f"seed 003 has no row {written}"
        ms = [m for m in options.misconceptions(canonical) if m["as_written"] == written and m["quoted"]]
        assert ms, f"{canonical}: no x-misconception for seed-003 key {written}"
        for m in ms:
            assert m["claim"] in rows[written], f"{written}: claim is not quoted from its seed row"
            assert len(m["truth"]) > 40
        # the alias finds the option (explain shuffle_captions -> shuffle_caption)
        assert canonical in options.resolve(written), written


def test_misconception_triggers_are_schemas_that_match_the_wrong_shape_not_the_default():
    from jsonschema import Draft202012Validator

    shapes = {"clip_skip": True, "xformers": ["a"], "enable_bucket": [5, 10, 15], "vae": True,
              "save_precision": 16, "mixed_precision": True, "network_alpha": 0.0001, "keep_tokens": 1000,
              "output_name": True, "max_token_length": 200, "save_model_as": "bin",
              "v_parameterization": "spectral_norm", "lr_scheduler": "plateau"}
    triggered = set()
    for name in options.option_names():
        for m in options.misconceptions(name):
            if "trigger" not in m:
                continue
            Draft202012Validator.check_schema(m["trigger"])
            validator = Draft202012Validator(m["trigger"])
            assert not validator.is_valid(options.default(name)), (name, "the default must not look wrong")
            if name in shapes:
                assert validator.is_valid(shapes[name]), name
                triggered.add(name)
    assert triggered == set(shapes)


def test_every_seed3_key_is_known_to_explain():
    """Each key seed 003 describes resolves to a canonical option or is a known front-end-only key."""
    rows = _seed3_rows()
    frontend = options.frontend_only_keys()
    if "save_json_only" not in frontend:
        pytest.skip("derrian-argstore schema (dialects engineer) not present yet")
    unknown = [k for k in rows if not options.resolve(k) and k not in frontend]
    assert unknown == []
    assert len(rows) >= 60


def test_quoted_misconceptions_are_verbatim():
    rows = _seed3_rows()
    for name in options.option_names():
        for m in options.misconceptions(name):
            assert {"as_written", "dialect", "source", "claim", "truth", "quoted"} <= set(m) <= {
                "as_written", "dialect", "source", "claim", "truth", "quoted", "trigger"}
            if m["quoted"]:
                assert m["claim"] in rows.get(m["as_written"], ""), (name, m["as_written"])


# ------------------------------------------------------------------------------------------------ validate
def _cfg(**values) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="sd-scripts-toml", source="cfg.toml")
    for i, (k, v) in enumerate(values.items(), start=1):
        cfg.options[k] = Setting(v, Provenance(origins=(Origin("cfg.toml", f"train.{k}", line=i, raw=v),)))
    return cfg


def test_validate_names_key_as_written_and_line():
    problems = validate_options(_cfg(network_dim=16, mixed_precision="fp8"))
    assert [(p.option, p.origin.key, p.origin.line) for p in problems] == [
        ("mixed_precision", "train.mixed_precision", 2)]
    assert "no, fp16, bf16" in problems[0].reason


def test_validate_flags_unconverted_toml():
    """golden config_types_not_converted: sd-scripts keeps these TOML types, which break training."""
    case = _cases()["config_types_not_converted"]
    values = {k: case["args"][k] for k in ("network_dim", "learning_rate", "max_train_epochs")}
    problems = {p.option: p.reason for p in validate_values(values)}
    assert set(problems) == {"network_dim", "learning_rate", "max_train_epochs"}
    assert "integer" in problems["network_dim"] and "float" in problems["max_train_epochs"]
    assert validate_values({"network_dim": 32, "learning_rate": 1e-4, "max_train_epochs": 10}) == []


def test_validate_ranges_enums_and_accepted_forms():
    assert [p.option for p in validate_values({"caption_dropout_rate": 1.5, "network_dim": 0,
                                               "zero_stage": 3, "max_token_length": 75})] == [
        "caption_dropout_rate", "network_dim"]
    ok = {"text_encoder_lr": [1e-4, 5e-5], "lr_warmup_steps": 0.1, "network_args": ["conv_dim=4"],
          "resolution": "768,512", "sdxl": True, "save_precision": None, "network_alpha": 1}
    assert validate_values(ok) == []
    assert validate_values({"text_encoder_lr": 1e-4}) == []  # a TOML scalar is tolerated (§2.3)
    assert [p.option for p in validate_values({"resolution": 512, "shuffle_caption": "true"})] == [
        "resolution", "shuffle_caption"]


def test_validate_strict_float_option():
    (p,) = validate_values({"validation_split": 0})
    assert p.option == "validation_split" and "0.0" in p.reason
    assert validate_values({"validation_split": 0.0}) == []


def test_validate_redacts_credentials():
    (p,) = validate_values({"wandb_api_key": 1234567})
    assert p.value == REDACTED and "1234567" not in p.reason


def test_validate_dataset_levels_strict_float_and_ranges():
    cfg = CanonicalConfig(dialect="sd-scripts-dataset", source="ds.toml")
    from lora_compat.config.dataset import dataset_from_table

    cfg.general = {"validation_split": Setting(0)}
    cfg.datasets = [dataset_from_table({"network_multiplier": 1.0, "batch_size": 0, "subsets": [
        {"image_dir": "/d", "caption_dropout_rate": 1, "resize_interpolation": "box"},
        {"image_dir": "/e", "face_crop_aug_range": [2, 4], "resize_interpolation": "sinc"}]})]
    problems = {(p.option, p.origin.key) for p in validate_options(cfg)}
    assert problems == {("validation_split", "general.validation_split"), ("batch_size", "datasets[0].batch_size"),
                        ("face_crop_aug_range", "datasets[0].subsets[1].face_crop_aug_range"),
                        ("resize_interpolation", "datasets[0].subsets[1].resize_interpolation")}


def test_dataset_schema_accepts_golden_user_configs_and_rejects_unknown_keys():
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema("sd-scripts-dataset.schema.json"))
    for case in golden("dataset_blueprints.json")["cases"]:
        errors = list(validator.iter_errors(case["user_config"]))
        assert bool(errors) == ("error" in case and case["error"] is not None), case["name"]


def test_dataset_defaults_match_golden_blueprint_when_nothing_is_set():
    """The schema's defaults equal sd-scripts' resolved values where neither config nor command line sets them."""
    data = golden("dataset_blueprints.json")
    case = next(c for c in data["cases"] if c["name"] == "cli_fallbacks_only")
    cli = data["cli_args"]
    sub = case["datasets"][0]["subsets"][0]
    compared = 0
    for key, value in sub.items():
        if not options.is_dataset_param(key) or key in cli or key == "image_dir":
            continue
        if "S-DB" not in options.dataset_levels(key):
            continue  # subset dataclass fields like validation_split that are not subset keys
        assert options.dataset_default(key) == value, key
        compared += 1
    params = case["datasets"][0]["params"]
    for key in ("network_multiplier", "validation_split", "validation_seed", "resize_interpolation"):
        assert options.dataset_default(key) == params[key], key
        compared += 1
    assert compared >= 20


# ------------------------------------------------------------------------------------------------ options API
def test_resolve_aliases_and_dataset_keys():
    assert options.resolve("shuffle_captions") == ["shuffle_caption"]
    assert options.resolve("--network_dim") == ["network_dim"]
    assert options.resolve("NETWORK_ALPHA") == ["network_alpha"]
    assert options.resolve("num_repeats") == ["dataset_repeats"]
    assert options.resolve("no_such_option") == []
    assert set(options.dataset_keys_at("S-FT")) >= {"metadata_file", "image_dir", "alpha_mask"}
    assert "is_reg" not in options.dataset_keys_at("S-FT")
    with pytest.raises(ValueError):
        options.dataset_keys_at("X")
    assert options.value_type("text_encoder_lr") == "array" and options.value_type("network_alpha") == "number"


def test_explain_alias_and_misconception():
    data = explain_option_data("shuffle_captions")
    assert data["name"] == "shuffle_caption" and data["default"] is False
    assert any(m["as_written"] == "shuffle_captions" for m in data["misconceptions"])
    text = explain_option_text("net_dim")
    assert "network_dim" in text and "number of hidden units" in text and "LoRA rank" in text
    ds = explain_option_data("class_tokens")
    assert ds["kind"] == "dataset-key" and ds["dataset"]["levels"] == ["G", "D-DB", "S-DB"]


def test_explain_frontend_only_key_when_dialect_schema_lists_it():
    fe = options.frontend_only_keys()
    if "save_json_only" not in fe:
        pytest.skip("derrian-argstore schema (dialects engineer) does not list save_json_only")
    data = explain_option_data("save_json_only")
    assert data["kind"] == "frontend-only" and "derrian-argstore" in data["names"]
    assert "never reaches training" in explain_option_text("save_json_only")


def test_explain_unknown_suggests():
    with pytest.raises(UserError) as exc:
        explain_option_data("shufle_caption")
    assert "shuffle_caption" in str(exc.value)


def test_options_and_validate_import_without_jsonschema_or_rich():
    code = ("import sys, lora_compat.config.options, lora_compat.config.validate, "
            "lora_compat.config.option_explain; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jsonschema', 'rich', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------ fast path vs jsonschema
def _value_strategy():
    from hypothesis import strategies as st

    scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3000), st.floats(-2, 3000, allow_nan=False),
                       st.sampled_from([0.0, 1.0, 75, 150, 225, "", "fp16", "no", "512,512", "box", "lanczos",
                                        "safetensors", "a=1", 1e-4, -1, 0, 1, 2, 3, 4]),
                       st.text(max_size=5))
    return st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(max_size=3), scalar, max_size=2))


def test_fast_path_never_accepts_what_jsonschema_rejects():
    from hypothesis import given, settings
    from jsonschema import Draft202012Validator

    from lora_compat.config import validate as v

    schemas = [v._constraints(options.spec(n)) for n in options.option_names()]
    schemas += [v._constraints(options.dataset_spec(k)) for k in options.dataset_param_names()]
    validators = [Draft202012Validator(s) for s in schemas]
    checked = {"accepted": 0}

    @settings(max_examples=400, deadline=None)
    @given(_value_strategy())
    def run(value):
        for schema, validator in zip(schemas, validators, strict=True):
            if v._surely_valid(schema, value):
                checked["accepted"] += 1
                assert validator.is_valid(value), (schema, value)

    run()
    assert checked["accepted"] > 1000  # the fast path is exercised, not just skipped


def test_valid_config_does_not_import_jsonschema():
    code = ("import sys; from lora_compat.config.validate import validate_values; "
            "assert validate_values({'network_dim': 16, 'resolution': '512,512', 'mixed_precision': 'bf16', "
            "'text_encoder_lr': [1e-4], 'network_args': ['conv_dim=4'], 'lr_warmup_steps': 0.1}) == []; "
            "print('jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_validate_never_raises_and_names_each_problem():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    names = options.option_names()

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(names), _value_strategy() | st.binary(max_size=3) | st.just(float("nan")))
    def run(name, value):
        problems = validate_values({name: value})
        assert len(problems) <= 1
        for p in problems:
            assert p.option == name and p.reason and "\n" not in p.reason

    run()
