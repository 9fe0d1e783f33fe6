"""Device memory: XLA's memory analysis, the fit check against a limit, and the one-line errors."""

import jax
import jax.numpy as jnp
import pytest

from dreamer import cli, memory


def test_parse_bytes_and_size():
    assert memory.parse_bytes("24G") == 24_000_000_000
    assert memory.parse_bytes("512M") == 512_000_000
    assert memory.parse_bytes("1.5T") == 1_500_000_000_000
    assert memory.parse_bytes("300kB") == 300_000
    assert memory.parse_bytes("1234") == 1234
    with pytest.raises(memory.UserError, match="DREAMER_DEVICE_MEMORY='lots' is not a size"):
        memory.parse_bytes("lots")
    assert memory.size(25_373_889_912) == "25.4 GB"
    assert memory.size(312_000_000) == "312 MB"
    assert memory.size(12) == "12 B"


def test_program_bytes_counts_a_known_program():
    # y = x @ x.T for x [512, 256] float32: argument 512 KiB, output 1 MiB exactly
    x = jnp.ones((512, 256), jnp.float32)
    compiled = jax.jit(lambda x: x @ x.T).lower(x).compile()
    parts = memory.program_bytes(compiled)
    assert parts["arguments"] == 512 * 256 * 4
    assert parts["outputs"] == 512 * 512 * 4
    assert parts["peak"] == parts["arguments"] + parts["outputs"] - parts["aliased"] + \
        parts["temporaries"]
    donated = jax.jit(lambda x: x * 2, donate_argnums=0).lower(x).compile()
    assert memory.program_bytes(donated)["aliased"] == 512 * 256 * 4  # the output reuses x


def test_device_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv(memory.ENV, "2G")
    assert memory.device_limit() == 2_000_000_000
    monkeypatch.delenv(memory.ENV)
    if jax.devices()[0].platform == "cpu":
        assert memory.device_limit() is None  # a CPU reports no limit: nothing is checked


def test_check_fits_names_the_knobs_over_a_small_limit():
    x = jnp.ones((1024, 1024), jnp.float32)  # 4 MB in, 4 MB out
    fn = jax.jit(lambda x: jnp.tanh(x @ x))
    assert memory.check_fits("test program", fn, (x,), limit=10**9) >= 8 * 2**20
    with pytest.raises(memory.DeviceMemoryError) as info:
        memory.check_fits("test program", fn, (x,), limit=10**6,
                          settings={"train.batch_size": 256})
    text = str(info.value)
    assert "the test program needs 8." in text and "the device has 1 MB" in text
    assert "train.batch_size (now 256)" in text and "train.reanalyse_batches" in text
    assert "\n" not in text


def test_train_over_the_device_limit_is_one_line(monkeypatch, tmp_path, capsys):
    """A config made to exceed a small limit stops at its first learner phase with the knobs,
    not a traceback, and before running the program."""
    monkeypatch.setenv(memory.ENV, "5M")
    code = cli.main(["train", "--world", "catch", "--real-steps", "96", "--no-progress",
                     "--out", str(tmp_path / "run"), "--set", "train.learning_starts=32",
                     "--set", "run.num_envs=4", "--set", "run.collect_steps=8"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dreamer: error: the learner program needs ")
    assert "the device has 5 MB ($DREAMER_DEVICE_MEMORY)" in lines[0]
    assert "train.batch_size (now 128)" in lines[0]


def test_out_of_memory_at_run_time_is_one_line(monkeypatch, capsys):
    """XLA's RESOURCE_EXHAUSTED raised while a program runs becomes one line with the knobs."""
    error = jax.errors.JaxRuntimeError(
        "RESOURCE_EXHAUSTED: Out of memory allocating 25373882280 bytes.\nmore lines\n...")

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "cmd_train", fail)
    assert cli.main(["train"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("dreamer: error: the device ran out of memory (RESOURCE_EXHAUSTED: "
                          "Out of memory allocating 25373882280 bytes.)")
    assert "train.reanalyse_batches" in err and "run.num_envs" in err
    with pytest.raises(jax.errors.JaxRuntimeError):  # --debug keeps the traceback
        cli.main(["--debug", "train"])
