"""Data parallelism: 4 CPU devices (XLA's forced host device count) against 1 device.

The 4-device runs happen in a subprocess, because the device count is fixed when JAX starts.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

# the 1-device run compiles nothing new when the tiny catch runs of this worker came first
pytestmark = pytest.mark.xdist_group("tiny_catch")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from dreamer import config as config_lib
    from dreamer.jax_setup import enable_compilation_cache
    from dreamer.train import Trainer

    enable_compilation_cache()  # the test session's ($DREAMER_CACHE)
    assert len(jax.devices()) == 4, jax.devices()
    out = sys.argv[1]
    # the tiny catch programs (4 copies x 8 steps, 32 updates per learner phase, target refresh
    # every 20): the 1-device run loads them from the test session's compilation cache
    common = ["world=catch", "run.real_steps=64", "train.learning_starts=64", "run.eval_episodes=0"]
    result = {}
    for devices in (1, 4):
        cfg = config_lib.override(config_lib.tiny(), common + [f"run.devices={devices}"])
        trainer = Trainer(cfg, f"{out}/d{devices}")
        ledger = trainer.run(progress=False)
        result[devices] = {
            "mesh": 0 if trainer.mesh is None else trainer.mesh.size,
            "replay_spec": (list(trainer.replay.rows.observation.sharding.spec)
                            if trainer.mesh is not None else None),
            "counts": [ledger.env_steps, ledger.episodes, ledger.updates, ledger.search,
                       ledger.unroll, ledger.reanalyse],
            "params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(trainer.train_state.params)],
            "actions": np.asarray(trainer.replay.rows.action).tolist(),
        }
    # bad layouts are refused with the fix
    from dreamer.train import DeviceLayoutError
    result["errors"] = []
    for extra in (["run.num_envs=6"], ["run.devices=8"]):
        try:
            Trainer(config_lib.override(config_lib.tiny(), ["world=catch"] + extra), f"{out}/bad")
        except DeviceLayoutError as e:
            result["errors"].append(str(e))
    print("RESULT " + json.dumps(result))
    """
)


def test_four_devices_match_one_device(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    one, four = result["1"], result["4"]
    assert one["mesh"] == 0 and four["mesh"] == 4
    assert four["replay_spec"] == [None, "data"]  # replay streams split over the devices
    # identical real and simulated sample counts; the same actions were collected (learning
    # starts after the last collection, so both learn from the same replay)
    assert one["counts"] == four["counts"] and one["counts"][2] == 32
    assert one["actions"] == four["actions"]
    # the same parameters after the updates, up to the order of float sums
    for a, b in zip(one["params"], four["params"], strict=True):
        assert a == pytest.approx(b, abs=1e-5, rel=1e-4)
    assert "run.num_envs=6 does not split over 4 devices" in result["errors"][0]
    assert "only 4 devices are present" in result["errors"][1]

