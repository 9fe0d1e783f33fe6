"""Optional extras in tests: skipped where absent on a developer's machine, a failure under CI.

CI (`.ci/run`, or any run with the environment variable `CI` set non-empty) installs every extra,
so a test that would skip there means a broken install; it must fail, not pass silently.
"""

from __future__ import annotations

import importlib
import os
import shutil

import pytest


def in_ci() -> bool:
    """True where the environment variable `CI` is set and non-empty."""
    return bool(os.environ.get("CI"))


def require(module_name: str, reason: str):
    """Imports and returns `module_name`; where it cannot be imported, skips the test with
    `reason`, or under CI fails it (naming the module, the reason and the ImportError)."""
    if not in_ci():
        return pytest.importorskip(module_name, reason=reason)
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        pytest.fail(f"CI is set but {module_name!r} cannot be imported ({reason}): "
                    f"{type(error).__name__}: {error}", pytrace=False)


def require_program(name: str, reason: str) -> str:
    """The path of the executable `name` on PATH; where absent, skips the test with `reason`, or
    under CI fails it."""
    path = shutil.which(name)
    if path is None:
        message = f"{name!r} is not on PATH: {reason}"
        if in_ci():
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    return path
