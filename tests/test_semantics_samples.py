"""Sample prompt files, sampling schedule, image names, samplers and validation timesteps (semantics/samples.py).

Expected values follow sd-scripts' train_util.line_to_prompt_dict / load_prompts / sample_images_common /
get_my_scheduler and train_network.py's validation loop at commit 48d368f (read, not run: they import torch).
"""

from __future__ import annotations

import json
import re

import pytest

from lora_compat.errors import UserError
from lora_compat.semantics.samples import (
    SAMPLERS,
    load_sample_prompts,
    parse_prompt_line,
    sample_due,
    sample_image_name,
    sampler_spec,
    sampling_interval,
    scheduler_kwargs,
    validate_after_epoch,
    validate_after_step,
    validation_steps,
    validation_timesteps,
)


def test_line_with_every_option():
    p = parse_prompt_line("a cat, masterpiece --n lowres, bad --w 768 --h 512 --d 42 --l 7.5 --s 20 --ss euler_a", 3)
    assert (p.index, p.prompt, p.negative_prompt) == (3, "a cat, masterpiece", "lowres, bad")
    assert (p.width, p.height, p.seed, p.scale, p.sample_steps, p.sample_sampler) == (768, 512, 42, 7.5, 20, "euler_a")
    assert p.problems == []


def test_line_quirks_as_sd_scripts():
    # steps are clamped to 1..1000; options match case-insensitively and only at the start of a piece
    assert parse_prompt_line("x --s 5000").sample_steps == 1000
    assert parse_prompt_line("x --s 0").sample_steps == 1
    assert parse_prompt_line("x --W 640").width == 640
    assert parse_prompt_line("x --w 512px").width == 512           # re.match: a prefix is enough
    # the prompt itself is matched too: "n dog" is the prompt and the negative prompt
    p = parse_prompt_line("n dog --w 64")
    assert (p.prompt, p.negative_prompt, p.width) == ("n dog", "dog", 64)
    # a later piece overrides an earlier one; a piece without the space is not an option
    assert parse_prompt_line("x --d 1 --d 2").seed == 2
    assert parse_prompt_line("x --d1").seed is None
    # '--' without a leading space stays in the prompt
    assert parse_prompt_line("a--w 64").prompt == "a--w 64"
    # a bad number is skipped (sd-scripts logs it) and recorded
    p = parse_prompt_line("x --l 7.5.1 --g 3.5")
    assert p.scale is None and p.guidance_scale == 3.5 and p.problems == ["--l 7.5.1"]
    # "--n" with nothing after it is no negative prompt
    assert parse_prompt_line("x --n").negative_prompt is None
    # sampler names are not checked here
    assert parse_prompt_line("x --ss Foo").sample_sampler == "Foo"


def test_txt_file(tmp_path):
    f = tmp_path / "prompts.txt"
    f.write_text("# a comment\n\n  first --d 1\n  # indented: a prompt in sd-scripts\nsecond --w 64 --h 72\n",
                 encoding="utf-8")
    ps = load_sample_prompts(f)
    assert [(p.index, p.prompt) for p in ps] == [(0, "first"), (1, "# indented: a prompt in sd-scripts"),
                                                  (2, "second")]
    assert ps[0].seed == 1 and (ps[2].width, ps[2].height) == (64, 72)


def test_toml_file(tmp_path):
    f = tmp_path / "prompts.toml"
    f.write_text('[prompt]\nwidth = 64\nheight = 64\nscale = 5\nsample_steps = 4\n\n'
                 '[[prompt.subset]]\nprompt = "a dog"\nseed = 7\n\n'
                 '[[prompt.subset]]\nprompt = "a cat"\nnegative_prompt = "blurry"\nsample_sampler = "euler"\n'
                 'my_note = "kept aside"\n', encoding="utf-8")
    ps = load_sample_prompts(f)
    assert [(p.prompt, p.width, p.height, p.scale, p.sample_steps, p.seed) for p in ps] == [
        ("a dog", 64, 64, 5.0, 4, 7), ("a cat", 64, 64, 5.0, 4, None)]
    assert ps[1].negative_prompt == "blurry" and ps[1].sample_sampler == "euler"
    assert ps[1].extra == {"my_note": "kept aside"} and ps[1].index == 1


def test_toml_key_in_both_places_is_refused(tmp_path):
    f = tmp_path / "prompts.toml"
    f.write_text('[prompt]\nwidth = 64\n[[prompt.subset]]\nprompt = "a"\nwidth = 128\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"prompts.toml: prompt.subset\[0\]: width given both"):
        load_sample_prompts(f)


def test_json_file(tmp_path):
    f = tmp_path / "prompts.json"
    f.write_text(json.dumps([{"prompt": "a", "width": 64, "seed": 3}, "b --h 96 --l 2"]), encoding="utf-8")
    ps = load_sample_prompts(f)
    assert (ps[0].prompt, ps[0].width, ps[0].seed) == ("a", 64, 3)
    assert (ps[1].index, ps[1].prompt, ps[1].height, ps[1].scale) == (1, "b", 96, 2.0)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("p.json", '[{"prompt": "a", "width": "512"}]', r"p.json: \[0\].width: width must be an integer"),
    ("p.json", '{"prompt": "a"}', r"p.json: a JSON prompt file must hold a list"),
    ("p.json", '[{"prompt": "a",}]', r"p.json:1:\d+: invalid JSON"),
    ("p.json", '[{"prompt": "a", "sample_steps": 0}]', r"sample_steps must be at least 1"),
    ("p.toml", 'prompt = "a"', r"p.toml: prompt.subset: a TOML prompt file needs"),
    ("p.toml", '[prompt\n', r"p.toml:1:\d+: invalid TOML"),
    ("p.TXT", "a", r"p.TXT: sample_prompts: a sample prompt file must end in .txt, .toml or .json"),
    ("p.yaml", "a", r"must end in .txt, .toml or .json"),
])
def test_bad_prompt_files_one_line(tmp_path, name, text, message):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message) as err:
        load_sample_prompts(f)
    assert "\n" not in str(err.value)


def test_missing_prompt_file(tmp_path):
    with pytest.raises(UserError, match="sample_prompts: the sample prompt file does not exist"):
        load_sample_prompts(tmp_path / "none.txt")


def test_sample_due_as_sample_images_common():
    due = lambda step, epoch, n_steps=None, n_epochs=None, first=False: sample_due(  # noqa: E731
        global_step=step, epoch=epoch, every_n_steps=n_steps, every_n_epochs=n_epochs, at_first=first)
    # before training: only sample_at_first decides, even without intervals
    assert due(0, 0, first=True) and not due(0, 0, n_steps=1)
    # every n steps: after steps (epoch None), never at epoch ends
    assert due(4, None, n_steps=2) and not due(3, None, n_steps=2) and not due(4, 2, n_steps=2)
    # every n epochs: at epoch ends only, and it makes every_n_steps ignored
    assert due(10, 2, n_steps=5, n_epochs=2) and not due(10, None, n_steps=5, n_epochs=2) and not due(10, 3, n_epochs=2)
    assert not due(5, None) and not due(5, 1)
    assert sampling_interval(0) is None and sampling_interval(-3) is None and sampling_interval(2) == 2


def test_sample_image_name():
    when = 1_700_000_000.0
    stamp = __import__("time").strftime("%Y%m%d%H%M%S", __import__("time").localtime(when))
    assert sample_image_name(output_name="mylora", index=3, global_step=120, epoch=None, seed=42, when=when) \
        == f"mylora_000120_03_{stamp}_42.png"
    assert sample_image_name(output_name=None, index=0, global_step=0, epoch=0, seed=None, when=when) \
        == f"e000000_00_{stamp}.png"
    assert re.fullmatch(r"x_e000012_11_\d{14}\.png",
                        sample_image_name(output_name="x", index=11, global_step=5, epoch=12, seed=None))


def test_every_sampler_name_maps():
    accepted = ["ddim", "pndm", "lms", "euler", "euler_a", "heun", "dpm_2", "dpm_2_a", "dpmsolver", "dpmsolver++",
                "dpmsingle", "k_lms", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a"]  # sd-scripts' argparse choices
    assert set(accepted) | {"ddpm"} == set(SAMPLERS)
    assert sampler_spec("k_euler_a")[0].scheduler_class == "EulerAncestralDiscreteScheduler"
    assert sampler_spec("dpmsolver++")[0].kwargs == (("algorithm_type", "dpmsolver++"),)
    assert sampler_spec("lms")[0].needs == "scipy"
    spec, note = sampler_spec("unipc")
    assert spec.name == "ddim" and "ddim" in note
    assert sampler_spec(None) == (SAMPLERS["ddim"], None)
    kw = scheduler_kwargs(SAMPLERS["dpmsolver"], v_parameterization=True)
    assert kw == {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "algorithm_type": "dpmsolver", "prediction_type": "v_prediction"}


def test_validation_timesteps_match_numpy():
    np = pytest.importorskip("numpy")
    assert validation_timesteps(None, None) == [200, 400, 600, 800]
    for lo, hi in [(0, 1000), (100, 900), (0, 999), (1, 2), (7, 7), (500, 100), (0, 1), (13, 997)]:
        want = np.linspace(lo, hi, 6, dtype=int)[1:-1].tolist()
        assert validation_timesteps(lo, hi) == want, (lo, hi)


def test_validation_schedule():
    assert validation_steps(10, None) == 10 and validation_steps(10, 3) == 3 and validation_steps(2, 5) == 2
    assert validate_after_step(6, 3) and not validate_after_step(7, 3) and not validate_after_step(6, None)
    assert validate_after_epoch(3, None) and validate_after_epoch(4, 2) and not validate_after_epoch(3, 2)
