"""Device memory: what a compiled program needs, from XLA's memory analysis, against what the
device has.

A program's peak is its arguments + outputs - the buffers they share (donation) + its temporaries:
XLA's own accounting of one call, the same on every backend for the same program (the CPU's
analysis of the `atari100k` learner gave the 25.37 GB that the GPU later failed to allocate).

The device's memory is its allocator's limit (`memory_stats()["bytes_limit"]`, present on GPUs and
TPUs). `DREAMER_DEVICE_MEMORY` overrides it (`24G`, `512M` or a byte count): on a large card it
answers "would this run fit a 24 GB one?", and on a CPU, which reports no limit, it turns the check
on. Without either, nothing is checked.
"""

from __future__ import annotations

import os
import re

import jax

from dreamer.errors import UserError

ENV = "DREAMER_DEVICE_MEMORY"
GB = 1e9

# The settings that shrink the learner's peak, in the order they usually pay.
LEARNER_KNOBS = ("train.reanalyse_batches", "train.batch_size", "search.num_simulations",
                 "train.reanalyse_fraction", "replay.capacity")


class DeviceMemoryError(UserError):
    """A program needs more device memory than the device has."""


def parse_bytes(text: str) -> int:
    """`"24G"`, `"512M"`, `"1.5T"`, `"300k"` or a plain byte count -> bytes (decimal units)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)[bB]?\s*", text)
    if not match:
        raise UserError(f"{ENV}={text!r} is not a size: write e.g. 24G, 512M or a byte count")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def size(n: int) -> str:
    """Bytes for people: `25.4 GB`, `312 MB`, `40 kB`."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def device_limit(device=None) -> int | None:
    """Bytes a program may use on `device` (the first device by default): $DREAMER_DEVICE_MEMORY
    if set, else the allocator's limit, else None (a CPU reports none)."""
    if os.environ.get(ENV):
        return parse_bytes(os.environ[ENV])
    device = device or jax.devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - backends without memory stats raise various errors
        return None
    return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


def program_bytes(compiled) -> dict[str, int]:
    """XLA's memory analysis of a compiled program: its parts and their peak, in bytes."""
    m = compiled.memory_analysis()
    parts = {
        "arguments": int(m.argument_size_in_bytes),
        "outputs": int(m.output_size_in_bytes),
        "aliased": int(m.alias_size_in_bytes),
        "temporaries": int(m.temp_size_in_bytes),
    }
    parts["peak"] = parts["arguments"] + parts["outputs"] - parts["aliased"] + parts["temporaries"]
    return parts


def check_fits(what: str, jitted, args, knobs=LEARNER_KNOBS, settings: dict | None = None,
               limit: int | None = None) -> int | None:
    """Lowers and compiles `jitted(*args)` and raises DeviceMemoryError if its peak exceeds the
    device's memory (see `device_limit`); returns the peak in bytes, or None when the device has
    no known limit (nothing is compiled then). `settings` maps each knob to its current value
    for the message."""
    limit = device_limit() if limit is None else limit
    if limit is None:
        return None
    peak = program_bytes(jitted.lower(*args).compile())["peak"]
    if peak > limit:
        settings = settings or {}
        named = ", ".join(f"{k} (now {settings[k]})" if k in settings else k for k in knobs)
        source = f" (${ENV})" if os.environ.get(ENV) else ""
        raise DeviceMemoryError(
            f"the {what} needs {size(peak)} of device memory and the device has "
            f"{size(limit)}{source}; lower {named} with --set")
    return peak


def is_out_of_memory(error: BaseException) -> bool:
    """True for XLA's out-of-memory error (`RESOURCE_EXHAUSTED: Out of memory ...`)."""
    return isinstance(error, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(error)


def out_of_memory_message(error: BaseException) -> str:
    """The one-line message for an out-of-memory error raised while a program ran."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else "out of memory"
    return (f"the device ran out of memory ({first[:160]}); lower {', '.join(LEARNER_KNOBS)} or "
            f"run.num_envs with --set")
