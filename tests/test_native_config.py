"""The native config: reader, writer, exact round trips, PEFT rules, refusal of bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lora_compat.config.dialects.native import NATIVE_NOTE_CODES, looks_native, read
from lora_compat.config.loaders import load_document
from lora_compat.config.model import DERIVED, RENAMED
from lora_compat.errors import UserError
from lora_compat.migrate.native import HEADER, dumps_native, kv_table, typed_arg
from lora_compat.migrate.report import MigrationReport

from shared_data import FIXTURES

NATIVE = FIXTURES / "migrate" / "native_full.toml"


def _read_text(tmp_path: Path, text: str, name: str = "c.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return read(load_document(str(p)))


def test_native_fields_map_to_canonical_options() -> None:
    cfg = read(load_document(str(NATIVE)))
    assert not cfg.invalid and not cfg.unknown_keys
    assert cfg.dialect == "native" and cfg.is_sdxl
    assert cfg.get("network_dim") == 16 and cfg.get("network_alpha") == 8
    assert isinstance(cfg.get("network_alpha"), int)  # TOML keeps int vs float: int64 alpha in sd-scripts
    assert cfg.get("network_module") == "networks.lora"
    assert cfg.options["network_module"].prov.kind == DERIVED
    assert cfg.get("network_args") == ["conv_dim=8", "conv_alpha=1.0", "rank_dropout=0.05", "module_dropout=0.0",
                                       "loraplus_lr_ratio=16"]
    assert cfg.get("lr_warmup_steps") == 0.05 and isinstance(cfg.get("lr_warmup_steps"), float)
    assert cfg.options["lr_warmup_steps"].prov.kind == RENAMED
    assert cfg.options["lr_warmup_steps"].prov.origin.line == 36
    assert cfg.get("optimizer_args") == ["weight_decay=0.01", "betas=0.9,0.99"]
    assert cfg.get("peft.use_rslora") is True and cfg.get("peft.init_lora_weights") == "gaussian"
    assert cfg.general["resolution"].value == [1024, 1024]
    assert [s.get("image_dir") for _, _, _, s in cfg.iter_subsets()] == ["/data/img", "/data/reg"]
    assert {n.code for n in cfg.notes} == {"native-rslora-scale", "native-init-not-kohya"}


def test_native_canonical_native_is_identical(tmp_path: Path) -> None:
    first = dumps_native(read(load_document(str(NATIVE))))
    again = dumps_native(_read_text(tmp_path, first))
    assert again == first
    assert first.startswith(HEADER) and '\nformat = "lora-compat/1"\n' in first
    assert "[[datasets.subsets]]" in first and "warmup_ratio = 0.05" in first


def test_warmup_units_are_explicit(tmp_path: Path) -> None:
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[scheduler]\nwarmup_steps = 100\n')
    assert cfg.get("lr_warmup_steps") == 100 and isinstance(cfg.get("lr_warmup_steps"), int)
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[scheduler]\nwarmup_ratio = 1\n')
    assert cfg.get("lr_warmup_steps") == 1.0 and isinstance(cfg.get("lr_warmup_steps"), float)  # 100 %, not 1 step
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[scheduler]\nwarmup_ratio = 0.1\nwarmup_steps = 3\n')
    assert "lr_warmup_steps" not in cfg.options
    assert [i.origin.key for i in cfg.invalid] == ["scheduler.warmup_ratio"]


def test_kinds_select_modules_and_mismatch_is_invalid(tmp_path: Path) -> None:
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[network]\nkind = "loha"\nr = 4\n')
    assert cfg.get("network_module") == "lycoris.kohya" and cfg.get("network_args") == ["algo=loha"]
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[network]\nkind = "locon"\nr = 4\n')
    assert [i.option for i in cfg.invalid] == ["network_module"]
    assert cfg.invalid[0].origin.line == 3


def test_bad_values_unknown_keys_and_format(tmp_path: Path) -> None:
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[network]\nr = "sixteen"\ntypo = 1\n'
                               '[optimizer]\nlearning_rate = "fast"\n[nonsense]\na = 1\n')
    assert {(i.option, i.origin.line) for i in cfg.invalid} == {("network_dim", 3), ("learning_rate", 6)}
    assert {u.key for u in cfg.unknown_keys} == {"network.typo", "nonsense"}
    with pytest.raises(UserError, match="lora-compat/9"):
        _read_text(tmp_path, 'format = "lora-compat/9"\n')
    assert looks_native({"format": "lora-compat/1"}) and not looks_native({"network_dim": 4})


@pytest.mark.parametrize("text,code", [
    ('[network]\nloftq_config = { loftq_bits = 4 }\n', "native-loftq-needs-init"),
    ('[network]\ninit_lora_weights = "loftq"\nloftq_config = { loftq_bits = 4 }\n[precision]\nfp8_base = true\n',
     "native-loftq-quantized-base"),
    ('[network]\nuse_dora = true\n', "native-dora-not-kohya"),
    ('[network]\nlora_dropout = 0.1\nnetwork_dropout = 0.1\n', "native-lora-dropout-not-kohya"),
    ('[network]\nrank_pattern = { "mid_block.attentions.0.proj_in" = 32 }\n', "native-pattern-no-kohya"),
])
def test_peft_rules_become_notes(tmp_path: Path, text: str, code: str) -> None:
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n' + text)
    assert code in {n.code for n in cfg.notes}
    assert code in NATIVE_NOTE_CODES
    assert not cfg.invalid


@pytest.mark.parametrize("text,ok", [
    ('init_lora_weights = "loftq"\n', False),                       # PEFT: loftq_config must be specified
    ('init_lora_weights = "loftq"\nloftq_config = { loftq_bits = 4 }\n', True),
    ('init_lora_weights = "orthogonal"\nr = 5\n', False),            # PEFT: orthogonal needs an even rank
    ('init_lora_weights = "orthogonal"\nr = 8\nconv_r = 3\nkind = "locon"\n', False),
    ('init_lora_weights = "orthogonal"\nr = 8\nrank_pattern = { "mid_block.attentions.0.proj_in" = 7 }\n', False),
    ('init_lora_weights = "orthogonal"\n', True),                   # unset r: sd-scripts' 4
])
def test_what_peft_refuses_is_invalid(tmp_path: Path, text: str, ok: bool) -> None:
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[network]\n' + text)
    assert (not cfg.invalid) == ok, cfg.invalid
    if not ok:
        assert [(i.option, i.origin.key, i.origin.line) for i in cfg.invalid] == \
            [("peft.init_lora_weights", "network.init_lora_weights", 3)]


def test_lint_reports_the_peft_rules(tmp_path: Path) -> None:
    """lint is where users meet PEFT's rules: refusals as LC101 errors, kohya differences as warnings."""
    from lora_compat.lint.registry import all_rules
    from lora_compat.lint.runner import lint_file

    p = tmp_path / "peft.toml"
    p.write_text('format = "lora-compat/1"\n[network]\nr = 16\nlora_alpha = 16\nuse_rslora = true\n'
                 'init_lora_weights = "loftq"\n[precision]\nfp8_base = true\n', encoding="utf-8")
    result = lint_file(str(p), list(all_rules()))
    assert result.error is None
    findings = result.findings
    got = {(f.code, f.severity, f.line) for f in findings}
    assert ("LC101", "error", 6) in got  # loftq without loftq_config
    rslora = [f for f in findings if f.line == 5]
    assert rslora and rslora[0].severity == "warning" and "sqrt(r)" in rslora[0].message
    assert rslora[0].code == "LC249"  # the PEFT rule, not the legacy front-end quirk catch-all (LC605)
    assert "LC605" not in {f.code for f in findings}


def test_init_lora_weights_takes_only_peft_values(tmp_path: Path) -> None:
    ok = _read_text(tmp_path, 'format = "lora-compat/1"\n[network]\ninit_lora_weights = "pissa_niter_4"\n')
    assert not ok.invalid
    bad = _read_text(tmp_path, 'format = "lora-compat/1"\n[network]\ninit_lora_weights = "kaiming"\n')
    assert [i.option for i in bad.invalid] == ["peft.init_lora_weights"]


def test_rslora_is_used_by_the_plan(tmp_path: Path) -> None:
    from lora_compat.plan import make_plan

    plan = make_plan(read(load_document(str(NATIVE))))
    kw = plan.adapter("unet").peft_kwargs
    assert kw["use_rslora"] is True and kw["init_lora_weights"] == "gaussian"


def test_typed_args_round_trip_exactly() -> None:
    assert typed_arg("4") == 4 and typed_arg("1.0") == 1.0 and typed_arg("0.5") == 0.5
    assert typed_arg("1e-4") is None and typed_arg("01") is None and typed_arg("abc") is None
    assert kv_table(["a=1", "b=2", "a=3"]) == {"b": "2", "a": "3"}  # sd-scripts' dict: the last one wins
    assert kv_table(["a=1", "flag"]) is None


def test_credentials_are_never_written(tmp_path: Path) -> None:
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[logging]\nwandb_api_key = "abc123secret"\n'
                               'log_with = "wandb"\n')
    report = MigrationReport(cfg.source, cfg.dialect, "native")
    text = dumps_native(cfg, report)
    assert "abc123secret" not in text and 'log_with = "wandb"' in text
    assert any(e.option == "wandb_api_key" and e.kind == "dropped" and e.value != "abc123secret"
               for e in report.entries)


def test_native_target_modules_list_and_regex(tmp_path: Path) -> None:
    from lora_compat.plan import make_plan

    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[model]\narch = "sd1"\n[network]\nr = 4\n'
                               'target_modules = ["mid_block.attentions.0.proj_in", '
                               '"encoder.layers.0.self_attn.q_proj"]\n')
    plan = make_plan(cfg)
    assert {a.part: a.peft_kwargs["target_modules"] for a in plan.adapters} == {
        "unet": ["mid_block.attentions.0.proj_in"], "text_encoder": ["encoder.layers.0.self_attn.q_proj"]}
    assert plan.adapter("unet").kohya_names == {
        "mid_block.attentions.0.proj_in": "lora_unet_mid_block_attentions_0_proj_in"}
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[model]\narch = "sd1"\n[network]\nr = 4\n'
                               'target_modules = ".*attn2\\\\.to_(k|v)"\n')
    plan = make_plan(cfg)
    assert [a.part for a in plan.adapters] == ["unet"]  # no text-encoder module matches
    assert len(plan.adapters[0].peft_kwargs["target_modules"]) == 2 * 16  # 16 transformer blocks in SD1


def test_every_canonical_option_has_a_native_field() -> None:
    from lora_compat.config import options
    from lora_compat.config.dialects.native import field_of_option, layout

    special = {"sdxl", "v2", "model_type", "network_module", "network_args", "lr_warmup_steps", "lr_decay_steps",
               "optimizer_args", "lr_scheduler_args",
               "config_file", "output_config"}  # file-handling options, not training settings
    assert set(options.option_names()) - special <= set(field_of_option())
    for section, fields in layout().items():
        for name, canonical in fields.items():
            assert canonical, f"[{section}] {name} has no x-canonical"


def test_native_schema_is_valid_and_refs_resolve() -> None:
    import jsonschema
    from referencing import Registry, Resource

    from lora_compat.resources import load_schema

    native, base = load_schema("native.schema.json"), load_schema("sd-scripts.schema.json")
    jsonschema.Draft202012Validator.check_schema(native)
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in (native, base)])
    validator = jsonschema.Draft202012Validator(native, registry=registry)
    from lora_compat.tomlparse import tomllib

    assert not list(validator.iter_errors(tomllib.loads(NATIVE.read_text())))
    errors = list(validator.iter_errors({"format": "lora-compat/1", "training": {"max_train_steps": "many"}}))
    assert errors and errors[0].json_path == "$.training.max_train_steps"


def _option_strategy(name: str):
    from hypothesis import strategies as st

    from lora_compat.config import options

    spec = options.spec(name) or {}
    if "enum" in spec:
        return st.sampled_from([v for v in spec["enum"] if v is not None])
    types = spec.get("type", [])
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters='"\\'), max_size=12)
    choices = []
    if "boolean" in types:
        choices.append(st.booleans())
    if "integer" in types:
        choices.append(st.integers(0, 10_000))
    if "number" in types:
        choices += [st.integers(0, 10_000), st.floats(0, 10, allow_nan=False, allow_infinity=False)]
    if "string" in types:
        choices.append(text)
    if "array" in types:
        item = (spec.get("items") or {}).get("type")
        choices.append(st.lists(st.floats(0, 1) if item == "number" else text, max_size=3))
    return st.one_of(choices) if choices else st.nothing()


def test_native_round_trip_property() -> None:
    """Random canonical options -> native -> canonical -> native: identical text, identical options."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from lora_compat.config import options
    from lora_compat.config.dialects.native import field_of_option, option_validator
    from lora_compat.config.model import CanonicalConfig
    from lora_compat.config.secrets import is_secret_key

    plain = sorted(o for o in field_of_option() if options.spec(o) and not is_secret_key(o)
                   and not options.spec(o).get("x-pseudo") and o not in ("v2",))
    kv = st.lists(st.tuples(st.sampled_from(["conv_dim", "conv_alpha", "algo", "preset", "rank_dropout", "x"]),
                            st.sampled_from(["4", "1.0", "0.25", "loha", "full", "1e-4", "a=b"])), max_size=4)

    @st.composite
    def configs(draw):
        names = draw(st.lists(st.sampled_from(plain), max_size=12, unique=True))
        values = {}
        for n in names:
            v = draw(_option_strategy(n))
            if not list(option_validator(n).iter_errors(v)):
                values[n] = v
        values["network_module"] = draw(st.sampled_from(["networks.lora", "lycoris.kohya", "networks.dylora"]))
        values["network_args"] = [f"{k}={v}" for k, v in draw(kv)] or None
        values["lr_warmup_steps"] = draw(st.one_of(st.integers(0, 500), st.floats(0, 1.5)))
        values["optimizer_args"] = [f"{k}={v}" for k, v in draw(kv)] or None
        values["sdxl"] = draw(st.booleans())
        return values

    @settings(max_examples=int(os.environ.get("NATIVE_PROPERTY_EXAMPLES", "60")), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(configs())
    def check(values):
        import os
        import tempfile

        from lora_compat.migrate.native import kv_table

        cfg = CanonicalConfig(dialect="test", source="generated")
        for k, v in values.items():
            if v is not None:
                cfg.set(k, v)
        first = dumps_native(cfg)
        fd, path = tempfile.mkstemp(suffix=".toml")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(first)
        try:
            back = read(load_document(path))
        finally:
            os.unlink(path)
        assert not back.invalid, back.invalid
        assert dumps_native(back) == first
        for k, v in values.items():
            if v is None or (k == "sdxl" and not v):
                continue
            got = back.get(k)
            if k in ("network_args", "optimizer_args"):
                assert kv_table(got) == kv_table(v), k
            else:
                assert got == v and type(got) is type(v), k

    check()


def test_every_native_field_is_documented() -> None:
    from lora_compat.resources import load_schema

    schema = load_schema("native.schema.json")
    assert schema["$id"].endswith("native.schema.json") and "2020-12" in schema["$schema"]
    for section, spec in schema["properties"].items():
        assert spec.get("description"), section
        for name, field in spec.get("properties", {}).items():
            assert field.get("description") and field.get("x-canonical"), f"[{section}] {name}"


def test_bad_target_regex_is_invalid(tmp_path: Path) -> None:
    cfg = _read_text(tmp_path, 'format = "lora-compat/1"\n[network]\ntarget_modules = "(to_q"\n')
    assert [(i.option, i.origin.line) for i in cfg.invalid] == [("peft.target_modules", 3)]


@pytest.mark.parametrize("options", [
    {"train_data_dir": "img", "in_json": "meta.json"},                 # fine-tune mode: the subset is derived
    {"train_data_dir": "img", "reg_data_dir": "reg"},
])
def test_datasets_derived_from_folder_options_are_not_written_twice(tmp_path: Path, options: dict) -> None:
    """A native file with folder options reads back into datasets derived from them; writing it again gives the
    same text (the options, no ``[[datasets]]`` copy of what they derive). Found by the round-trip property."""
    from lora_compat.config.load import load_config

    (tmp_path / "img" / "2_cat").mkdir(parents=True)
    (tmp_path / "img" / "2_cat" / "a.png").write_bytes(b"")
    (tmp_path / "reg" / "1_cat").mkdir(parents=True)
    lines = [f'{k} = "{v}"' for k, v in options.items()]
    path = tmp_path / "in.toml"
    path.write_text('pretrained_model_name_or_path = "m.safetensors"\n' + "\n".join(lines) + "\n")
    cfg = load_config(str(path))
    assert cfg.datasets and cfg.datasets[0].subsets        # the reader derived them
    first = dumps_native(cfg)
    assert "[[datasets" not in first
    native = tmp_path / "native.toml"
    native.write_text(first)
    back = read(load_document(str(native)))
    assert dumps_native(back) == first
