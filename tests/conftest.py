"""Test session setup: one persistent XLA cache per session, so identical programs compile once."""

import os
import tempfile

from dreamer.jax_setup import enable_compilation_cache

enable_compilation_cache(os.environ.get("DREAMER_CACHE") or tempfile.mkdtemp(prefix="dreamer-xla-"))
