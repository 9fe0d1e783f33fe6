"""Process-wide JAX settings shared by the CLI and the tests."""

from __future__ import annotations

import os


def enable_compilation_cache(directory: str | None = None) -> str:
    """Turns on JAX's persistent compilation cache, so a rerun of the same config skips XLA
    compilation (tens of seconds on a CPU). Default folder: $DREAMER_CACHE or ~/.cache/dreamer/xla.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if directory is None and current:
        return current  # already chosen by this process (e.g. the test session)
    directory = directory or os.environ.get(
        "DREAMER_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "dreamer", "xla")
    )
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
