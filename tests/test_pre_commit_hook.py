"""The published pre-commit hook (``.pre-commit-hooks.yaml``) installs and lints, as ``pre-commit try-repo`` runs it.

pre-commit clones this checkout (uncommitted changes included), builds a virtualenv and ``pip install``s the
package into it: that needs the package registry (setuptools for the build, click/rich/jsonschema/tomli-w).
When the registry cannot be reached the test is skipped with that reason; any other failure fails it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from shared_data import CORPUS, FIXTURES, ROOT

pytestmark = pytest.mark.slow

CORPUS_FILE = CORPUS / "kohya_ss" / "SDXL - LoRA AI_characters standard v1.1.json"
OFFLINE_SIGNS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                 "No matching distribution found for setuptools", "Network is unreachable")


def _git(repo, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"})


def test_pre_commit_try_repo_runs_the_hook_on_real_configs(tmp_path):
    pytest.importorskip("pre_commit", reason="pre-commit is not installed (it is in the test extra)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "user-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    if CORPUS_FILE.is_file():
        shutil.copy(CORPUS_FILE, repo / "preset.json")   # a real kohya_ss preset: findings, no error
        preset = "preset.json"
    else:
        preset = None
    shutil.copy(FIXTURES / "lint" / "kohya_sdxl_bad.json", repo / "bad.json")    # has error findings
    shutil.copy(FIXTURES / "lint" / "clean.toml", repo / "clean.toml")          # no finding
    (repo / "package.json").write_text('{"name": "web-ui", "version": "1.0.0"}\n')  # not a training config
    files = [f for f in (preset, "bad.json", "clean.toml", "package.json") if f]
    _git(repo, "add", *files)

    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1",
           "PRE_COMMIT_COLOR": "never"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "lora-compat-lint",
                           "--files", *files], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    if "lora-compat lint..." not in out and any(sign in out for sign in OFFLINE_SIGNS):
        pytest.skip("pre-commit could not install the hook: the package registry is not reachable")

    assert proc.returncode == 1, out                          # the hook fails the commit: bad.json has errors
    assert "lora-compat lint" in out and "Failed" in out, out
    assert "bad.json (kohya-gui" in out and "LC209" in out and "LC501" in out, out
    assert "clean.toml" not in out.split("Found")[0], out     # a clean file prints nothing
    with_findings = 2 if preset else 1
    assert f"in {with_findings} of {len(files)} file(s), 1 skipped (not training configs)" in out, out
    assert "Traceback" not in out, out
    if preset:
        assert "preset.json (kohya-gui K3)" in out, out
