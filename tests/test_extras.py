"""tests/extras.py: a test needing an optional extra (minatar's reference, TextWorldExpress and its
Java, TextWorld) skips where the extra is absent, and fails instead when `CI` is set, so a broken
CI install cannot pass silently. Every test reaches the extras through it, never
`pytest.importorskip` directly."""

import pathlib
import re
import sys

import pytest
from extras import in_ci, require, require_program

MISSING = "dreamer_no_such_module_for_the_extras_test"


def _outcome(call):
    """'skipped', 'failed' or 'passed', and the message, of `call()` as pytest would see it."""
    try:
        call()
    except pytest.skip.Exception as e:
        return "skipped", str(e)
    except pytest.fail.Exception as e:
        return "failed", str(e)
    return "passed", ""


@pytest.mark.parametrize("ci", ["", "1", "true"])
def test_a_missing_extra_skips_outside_ci_and_fails_under_ci(ci, monkeypatch):
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    assert in_ci() == bool(ci)
    module = _outcome(lambda: require(MISSING, "the 'text' extra is not installed"))
    program = _outcome(lambda: require_program(MISSING, "Java is not installed"))
    if ci:
        assert module[0] == program[0] == "failed", (module, program)
        assert module[1].startswith(f"CI is set but {MISSING!r} cannot be imported "
                                    "(the 'text' extra is not installed): ModuleNotFoundError")
        assert program[1] == f"CI is set but {MISSING!r} is not on PATH: Java is not installed"
    else:
        assert module[0] == program[0] == "skipped", (module, program)
        assert "the 'text' extra is not installed" in module[1]
        assert program[1] == f"{MISSING!r} is not on PATH: Java is not installed"


def test_a_broken_install_fails_under_ci(tmp_path, monkeypatch):
    """A module that is present but whose import raises ImportError (a half-installed extra, a
    missing shared library) fails under CI, naming the error."""
    (tmp_path / "dreamer_broken_extra.py").write_text(
        "raise ImportError('libjvm.so: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CI", "1")
    outcome, message = _outcome(lambda: require("dreamer_broken_extra", "the 'text' extra"))
    sys.modules.pop("dreamer_broken_extra", None)
    assert outcome == "failed"
    assert message.endswith("ImportError: libjvm.so: cannot open shared object file"), message


def test_a_present_extra_is_returned_under_ci_and_outside(monkeypatch):
    for ci in ("", "1"):
        monkeypatch.setenv("CI", ci)
        assert require("json", "stdlib") is sys.modules["json"]
        assert require_program("sh", "a POSIX shell").endswith("sh")


def test_no_test_skips_on_a_missing_extra_by_itself():
    """The tests and notebooks take optional modules through tests/extras.py: a direct
    `pytest.importorskip` (or a skip on an ImportError) would pass silently under CI."""
    root = pathlib.Path(__file__).resolve().parent.parent
    offenders = []
    for path in [*root.joinpath("tests").glob("*.py"), *root.joinpath("notebooks").glob("*.ipynb")]:
        if path.name in ("extras.py", "test_extras.py"):
            continue
        text = path.read_text()
        if "importorskip" in text or re.search(r"except\s+\(?\s*(Module\w*|Import)Error[^:]*:"
                                               r"\s*\n\s*pytest\.skip", text):
            offenders.append(path.name)
    assert offenders == []
