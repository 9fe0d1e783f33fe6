"""Data parallelism: 4 CPU devices (XLA's forced host device count) against 1 device.

The 4-device run happens in a subprocess, because the device count is fixed when JAX starts; the
1-device run of the same config happens here, on the programs the tiny catch tests of this worker
compiled already (a 1-device program compiled in a 4-device process is not found in the
compilation cache, so running it there would compile everything twice).
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from dreamer import config as config_lib
from dreamer.train import Trainer

pytestmark = pytest.mark.xdist_group("tiny_catch")

# the tiny catch programs (4 copies x 8 steps, 32 updates per learner phase, target refresh
# every 20): learning starts after the last collection, so both runs learn from the same replay
COMMON = ["world=catch", "run.real_steps=64", "train.learning_starts=64", "run.eval_episodes=0"]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from dreamer import config as config_lib
    from dreamer.jax_setup import enable_compilation_cache
    from dreamer.train import DeviceLayoutError, Trainer

    enable_compilation_cache()  # the test session's ($DREAMER_CACHE)
    assert len(jax.devices()) == 4, jax.devices()
    out, common = sys.argv[1], json.loads(sys.argv[2])
    cfg = config_lib.override(config_lib.tiny(), common + ["run.devices=4"])
    trainer = Trainer(cfg, f"{out}/d4")
    ledger = trainer.run(progress=False)
    result = {
        "mesh": trainer.mesh.size,
        "replay_spec": list(trainer.replay.rows.observation.sharding.spec),
        "counts": [ledger.env_steps, ledger.episodes, ledger.updates, ledger.search,
                   ledger.unroll, ledger.reanalyse],
        "params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(trainer.train_state.params)],
        "actions": np.asarray(trainer.replay.rows.action).tolist(),
    }
    # bad layouts are refused with the fix
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
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), json.dumps(COMMON)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    four = json.loads(line[len("RESULT "):])

    single = Trainer(config_lib.override(config_lib.tiny(), [*COMMON, "run.devices=1"]),
                     str(tmp_path / "d1"))
    ledger = single.run(progress=False)
    assert single.mesh is None and four["mesh"] == 4
    assert four["replay_spec"] == [None, "data"]  # replay streams split over the devices
    # identical real and simulated sample counts; the same actions were collected
    counts = [ledger.env_steps, ledger.episodes, ledger.updates, ledger.search, ledger.unroll,
              ledger.reanalyse]
    assert counts == four["counts"] and counts[2] == 32
    assert np.asarray(single.replay.rows.action).tolist() == four["actions"]
    # the same parameters after the updates, up to the order of float sums
    params = [np.asarray(x).ravel() for x in jax.tree.leaves(single.train_state.params)]
    for a, b in zip(params, four["params"], strict=True):
        assert a.tolist() == pytest.approx(b, abs=1e-5, rel=1e-4)
    assert "run.num_envs=6 does not split over 4 devices" in four["errors"][0]
    assert "only 4 devices are present" in four["errors"][1]
