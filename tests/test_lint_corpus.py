"""Lint the whole ../shared/corpus: no traceback, only non-training files refused, a rule -> count table printed."""

from __future__ import annotations

import sys

import pytest

from lora_compat.lint.registry import all_rules
from lora_compat.lint.runner import lint_paths

from shared_data import CORPUS, requires_corpus


@pytest.fixture(scope="module")
def report():
    return lint_paths([str(CORPUS)], all_rules())


@requires_corpus
def test_corpus_lints_without_internal_errors(report, capsys) -> None:
    assert len(report.results) >= 170
    for r in report.errors:
        # the only refusals are the files that are not training configs (MANIFEST.md lists 8)
        assert "internal" not in r.error and "Traceback" not in r.error, r.error
        assert ("not a training config" in r.error or "not a LoRA training config" in r.error
                or "unmerged" in r.error), r.error
    assert len(report.errors) <= 8
    linted = [r for r in report.results if r.error is None]
    assert linted and all(r.dialect for r in linted)
    counts = report.summary()["by_code"]
    names = {r.code: r.name for r in all_rules()}
    with capsys.disabled():
        print(f"\n\nlint over {len(report.results)} corpus files ({len(report.errors)} refused, not training "
              f"configs): {report.summary()['findings']} findings", file=sys.stderr)
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {code}  {names.get(code, '?'):<42} {n:>5}", file=sys.stderr)


@requires_corpus
def test_corpus_findings_are_located(report) -> None:
    for f in report.findings:
        assert f.file and f.code and f.message
        assert f.line is None or f.line >= 1


@requires_corpus
def test_corpus_real_traps_are_found(report) -> None:
    """A few facts about real files, checked by hand against the files themselves."""
    by_file: dict[str, set[str]] = {}
    for f in report.findings:
        by_file.setdefault(f.file.rsplit("/", 1)[-1], set()).add(f.code)
    # kohya_ss test config with "bucket_reso_steps": 1 and bucketing on (line 9): sd-scripts asserts
    assert "LC317" in by_file["SDXL-Standard-AdamW8bit.json"]
    # Derrian A1 defaults: use_8bit_adam true (legacy flag)
    a1 = [k for k in by_file if k.startswith("argstore_defaults__2023-01-12")]
    assert a1 and all("LC602" in by_file[k] for k in a1)
