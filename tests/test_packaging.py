"""lora-compat installs like a PyPI tool: the package carries its schemas and model configs in every install mode.

Modes checked: the checkout on ``sys.path`` (pytest's ``pythonpath``), the development install (editable),
an sdist built from the tracked files, and the wheel built from that sdist installed non-editable and run from
a folder outside the checkout through ``.ci/smoke.py`` (the same smoke test ``.ci/run`` runs in a fresh venv).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from lora_compat import __version__
from lora_compat.resources import DATA_DIR, load_schema, schema_names, schemas_dir

from shared_data import CORPUS, ROOT

KNOWN_SCHEMAS = {"sd-scripts.schema.json", "sd-scripts-dataset.schema.json", "kohya-gui.schema.json",
                 "derrian-argstore.schema.json", "derrian-toml.schema.json", "native.schema.json"}


def _tracked_files() -> list[str]:
    """The repository's tracked files (git), or every file outside build outputs when git is unavailable."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        return [p for p in out.decode().split("\0") if p and ((ROOT / p).exists() or (ROOT / p).is_symlink())]
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available to list the tracked files")


def _package_files() -> set[str]:
    """Every tracked file of the lora_compat package, as wheel member names."""
    return {p for p in _tracked_files() if p.startswith("lora_compat/")}


def _probe(code: str, *, cwd: Path, env_extra: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


PROBE = ("import json, lora_compat, lora_compat.resources as r;"
         "print(json.dumps({'file': lora_compat.__file__, 'schemas': r.schema_names(),"
         " 'sdxl_unet': (r.DATA_DIR / 'models' / 'sdxl' / 'unet' / 'config.json').is_file(),"
         " 'title': r.load_schema('sd-scripts.schema.json').get('title')}))")


def test_schemas_live_in_the_package_and_load_through_importlib_resources():
    assert set(schema_names()) == KNOWN_SCHEMAS
    on_disk = {p.name for p in (ROOT / "lora_compat" / "schemas").glob("*.schema.json")}
    assert set(schema_names()) == on_disk
    for name in schema_names():
        assert load_schema(name)["$id"].endswith("/" + name)
    assert (schemas_dir() / "sd-scripts.schema.json").is_file()
    assert (DATA_DIR / "models" / "sd1" / "unet" / "config.json").is_file()


def test_top_level_schemas_is_the_package_folder_not_a_copy():
    top = ROOT / "schemas"
    if not top.is_symlink():
        pytest.skip("this checkout has no symbolic links (git core.symlinks=false): schemas is a plain file")
    assert top.resolve() == (ROOT / "lora_compat" / "schemas").resolve()


def test_checkout_on_sys_path_finds_the_data(tmp_path):
    info = json.loads(_probe(PROBE, cwd=tmp_path, env_extra={"PYTHONPATH": str(ROOT)}))
    assert Path(info["file"]).resolve().parent == ROOT / "lora_compat"
    assert set(info["schemas"]) == KNOWN_SCHEMAS and info["sdxl_unet"] and info["title"]


def test_development_install_finds_the_data_outside_the_checkout(tmp_path):
    """The project's own venv (``pip install -e``) from a folder outside the checkout, no PYTHONPATH."""
    info = json.loads(_probe(PROBE, cwd=tmp_path))
    assert set(info["schemas"]) == KNOWN_SCHEMAS and info["sdxl_unet"] and info["title"]


def test_one_version_source():
    """``lora_compat.__version__`` is the only version: setuptools reads it, ``--version`` and the metadata show it."""
    from importlib.metadata import version

    from click.testing import CliRunner

    from lora_compat.cli import cli

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'attr = "lora_compat.__version__"' in pyproject
    assert "\nversion =" not in pyproject.split("[tool.")[0]      # no second, static version in [project]
    assert version("lora-compat") == __version__                  # the development install's metadata
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """An sdist built from a copy of the tracked files, and the wheel pip builds from that sdist."""
    pytest.importorskip("setuptools", minversion="77", reason="building the package needs setuptools>=77")
    tmp = tmp_path_factory.mktemp("build")
    src = tmp / "src"
    for rel in _tracked_files():
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / rel).is_symlink():
            target.symlink_to(os.readlink(ROOT / rel))
        else:
            shutil.copy2(ROOT / rel, target)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta as b;"
                    "print(b.build_sdist(sys.argv[1]))", str(dist)], cwd=src, check=True, capture_output=True)
    (sdist,) = dist.glob("*.tar.gz")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(dist), str(sdist)], cwd=tmp, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = dist.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "tmp": tmp}


@pytest.mark.slow
def test_sdist_and_wheel_carry_every_package_file(built):
    wanted = _package_files()
    assert {f"lora_compat/schemas/{n}" for n in KNOWN_SCHEMAS} <= wanted
    assert any(p.startswith("lora_compat/data/models/") for p in wanted)
    with tarfile.open(built["sdist"]) as tar:
        prefix = tar.getnames()[0].split("/")[0]
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert wanted <= in_sdist, sorted(wanted - in_sdist)
    assert {"LICENSE", "README.md", "pyproject.toml"} <= in_sdist
    assert prefix == f"lora_compat-{__version__}"
    with zipfile.ZipFile(built["wheel"]) as whl:
        names = set(whl.namelist())
        metadata = whl.read(f"lora_compat-{__version__}.dist-info/METADATA").decode()
    assert wanted <= names, sorted(wanted - names)
    assert "lora_compat/py.typed" in names
    assert not any(n.startswith(("tests/", "fixtures/", "schemas/")) for n in names)
    assert f"Version: {__version__}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_wheel_installed_non_editable_passes_the_smoke_test(built):
    """The wheel unpacked into its own folder (first on sys.path), run from outside the checkout."""
    site = built["tmp"] / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                           str(site), str(built["wheel"])], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    outside = built["tmp"] / "elsewhere"
    outside.mkdir()
    cmd = [sys.executable, str(ROOT / ".ci" / "smoke.py"), "--repo", str(ROOT),
           "--exe", str(site / "bin" / "lora-compat")]
    if CORPUS.is_dir():
        cmd += ["--corpus-dir", str(CORPUS)]
    proc = subprocess.run(cmd, cwd=outside, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"lora_compat imported from {site / 'lora_compat'}" in proc.stdout
    assert "smoke test: 0 failed" in proc.stdout


def test_train_extra_installs_bitsandbytes_only_where_pypi_has_wheels():
    """bitsandbytes has no sdist: its marker must exclude platforms without a wheel (macOS: 14+ only, which no safe
    marker can tell from 13), and must not compare
    ``platform_release``/``platform_version`` (not PEP 440 versions: "6.18.44-fc-v1252" crashed Python 3.13.0's pip)."""
    from packaging.requirements import Requirement

    from lora_compat.tomlparse import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    every = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    assert not [r for r in every if "platform_release" in r or "platform_version" in r]
    (bnb,) = [Requirement(r) for r in project["optional-dependencies"]["train"] if r.startswith("bitsandbytes")]
    wheels = {("linux", "x86_64"): True, ("linux", "aarch64"): True, ("win32", "AMD64"): True,
              ("darwin", "arm64"): False, ("darwin", "x86_64"): False, ("linux", "ppc64le"): False,
              ("win32", "ARM64"): False}
    assert bnb.marker is not None
    for (system, machine), has_wheel in wheels.items():
        env = {"sys_platform": system, "platform_machine": machine}
        assert bnb.marker.evaluate(env) is has_wheel, env
