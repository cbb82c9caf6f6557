"""Writers never crash: any canonical value ends written, converted or reported, and outputs always parse."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lora_compat.config import options
from lora_compat.config.model import CanonicalConfig, Dataset, Setting, Subset
from lora_compat.migrate.run import render
from lora_compat.tomlparse import tomllib

NAMES = [*sorted(options.option_names()), "peft.use_rslora", "peft.target_modules", "not_an_option"]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2048), st.floats(-1, 10), st.text(max_size=8),
    st.sampled_from(["a b", '"q"', "10%", "512", "1e-4", "networks.lora", "lycoris.kohya"]),
    st.lists(st.one_of(st.sampled_from(["conv_dim=4", "algo=loha", "x", "k=1", "k=2"]), st.none(),
                       st.integers(0, 3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.one_of(st.integers(0, 3), st.none()), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=10), st.one_of(st.none(), VALUES))
@example(opts={}, dataset_value="¹")  # str.isdigit() is True for superscripts, int() refuses them
def test_writers_never_crash(opts: dict, dataset_value) -> None:
    cfg = CanonicalConfig(dialect="test", source="generated.toml")
    for k, v in opts.items():
        cfg.set(k, v)
    if dataset_value is not None:
        cfg.general = {"resolution": Setting(dataset_value)}
        cfg.datasets = [Dataset({"batch_size": Setting(dataset_value)},
                                [Subset({"image_dir": Setting("/img"), "num_repeats": Setting(dataset_value)})])]
    for to, out in (("native", "/nonexistent/o.toml"), ("sd-scripts", "/nonexistent/o.toml"),
                    ("kohya-gui", "/nonexistent/o.json")):
        files, report = render(cfg, to, out)
        for path, text in files.items():
            json.loads(text) if path.endswith(".json") else tomllib.loads(text)
        assert all(e.kind for e in report.entries)
