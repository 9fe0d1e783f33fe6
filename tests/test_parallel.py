"""Data parallelism: 4 CPU devices (XLA's forced host device count) against 1 device.

Every program built with explicit shardings runs on the 4-device path, the way a user gets it
(`run.devices=0`, the default, with evaluation on): collect, add, learn, the buffer-wide
reanalysis pass, evaluate (JAX world), act and the host evaluation (host world), a stop and
`--resume` on the mesh, and `dreamer eval --run` of the 4-device run.

The 4-device runs happen in a subprocess, because the device count is fixed when JAX starts; the
1-device runs of the same configs happen here, after it, on the tiny catch programs (a 1-device
program compiled in a 4-device process is not found in the compilation cache, so running it there
would compile everything twice). No xdist group: the subprocess, most of the test's time, shares
nothing in memory with the tiny catch tests, and by the time the 1-device runs start the
persistent compilation cache ($DREAMER_CACHE) usually holds their programs (the tiny_catch group
compiles them in its first run), so the test is free to run on the worker beside that group.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from dreamer import cli
from dreamer import config as config_lib
from dreamer.train import Trainer

# the tiny catch programs (4 copies x 8 steps, 32 updates per learner phase, target refresh every
# 20), evaluated (10 episodes, the default) at the end. EXACT: learning starts after the last
# collection, so both device counts collect from the same parameters and learn from the same
# replay, and their parameters stay within float-sum order of each other. AFTER_UPDATE: learning
# starts after the first collection, so the second collection acts with updated parameters. From
# there the two device counts are not bit-comparable: catch's early value targets are ~1e-5, so
# the prioritised sampling turns the float-sum differences of the sharded search and update into
# other batches; the counts stay exact, and a stop/resume on the mesh is compared with an
# uninterrupted run on the mesh instead.
EXACT = ["world=catch", "run.real_steps=64", "train.learning_starts=64", "run.eval_interval=64"]
AFTER_UPDATE = ["world=catch", "run.real_steps=80", "train.learning_starts=32",
                "run.eval_interval=32", "run.checkpoint_interval=32",
                "train.reanalyse_pass_interval=20"]  # and the buffer-wide pass, sharded
# AFTER_UPDATE and HOST end on a short round (80 = 2 x 32 + 4 steps a copy, one copy a device):
# its 16 credit is less than a phase, so the updates are those of the two full rounds.
# a gymnasium world through the host loop: 4 copies, one learner phase, evaluated at the end
HOST = ["world=gym:CartPole-v1", "run.real_steps=80", "run.num_envs=4", "run.collect_steps=8",
        "train.learning_starts=64", "run.eval_episodes=4", "run.eval_interval=80"]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from dreamer import cli
    from dreamer import config as config_lib
    from dreamer.jax_setup import enable_compilation_cache
    from dreamer.train import DeviceLayoutError, Trainer

    enable_compilation_cache()  # the test session's ($DREAMER_CACHE)
    assert len(jax.devices()) == 4, jax.devices()
    out, exact, after, host = sys.argv[1], *map(json.loads, sys.argv[2:5])

    def counts(ledger):
        return [ledger.env_steps, ledger.episodes, ledger.updates, ledger.search, ledger.unroll,
                ledger.reanalyse, ledger.dream]

    def tiny(overrides):  # run.devices=0, the default: all devices
        return config_lib.override(config_lib.tiny(), overrides)

    trainer = Trainer(tiny(exact), f"{out}/exact")
    ledger = trainer.run(progress=False)
    assert cli.main(["eval", "--run", f"{out}/exact"]) == 0  # the run's 10: its programs
    result = {
        "mesh": trainer.mesh.size,
        "replay_spec": list(trainer.replay.rows.observation.sharding.spec),
        "counts": counts(ledger),
        "params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(trainer.train_state.params)],
        "actions": np.asarray(trainer.replay.rows.action).tolist(),
        "eval_csv": open(f"{out}/exact/eval.csv").read(),
        "eval_run": json.load(open(f"{out}/exact/eval.json"))["returns"],
    }
    straight = Trainer(tiny(after), f"{out}/straight")
    straight.run(progress=False)
    first = Trainer(tiny(after), f"{out}/after")
    first.run(progress=False, stop_flag=lambda: first.ledger.env_steps >= 32)
    assert first.ledger.env_steps == 32
    resumed = Trainer(tiny(after), f"{out}/after", resume=True)  # resumed on the mesh
    result["resumed_from"] = resumed.ledger.env_steps  # from the checkpoint, not from scratch
    result["restored"] = all(
        np.array_equal(np.asarray(a), np.asarray(b))
        and a.sharding.is_equivalent_to(b.sharding, np.ndim(a))
        for a, b in zip(
            jax.tree.leaves((first.train_state, first.replay, first.collector.state)),
            jax.tree.leaves((resumed.train_state, resumed.replay, resumed.collector.state)),
            strict=True))
    result["after"] = {
        "counts": counts(resumed.run(progress=False)),
        "bit_identical": all(
            np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(
                jax.tree.leaves((straight.train_state, straight.replay, straight.collector.state)),
                jax.tree.leaves((resumed.train_state, resumed.replay, resumed.collector.state)),
                strict=True)),
        "eval_csv": open(f"{out}/after/eval.csv").read(),
        "straight_eval_csv": open(f"{out}/straight/eval.csv").read(),
    }
    host_trainer = Trainer(tiny(host), f"{out}/host")
    host_ledger = host_trainer.run(progress=False)
    result["host"] = {"mesh": host_trainer.mesh.size, "ledger": host_ledger.to_json(),
                      "eval_csv": open(f"{out}/host/eval.csv").read()}
    # bad layouts are refused with the fix
    result["errors"] = []
    for extra in (["run.num_envs=6"], ["run.devices=8"]):
        try:
            Trainer(tiny(["world=catch"] + extra), f"{out}/bad")
        except DeviceLayoutError as e:
            result["errors"].append(str(e))
    print("RESULT " + json.dumps(result))
    """
)


def _counts_columns(csv_text):
    """eval.csv without the returns: env_steps, updates, simulated and episodes of each row."""
    return [(r[0], r[1], r[2], r[5]) for r in (line.split(",") for line in csv_text.splitlines())]


def test_four_devices_match_one_device(tmp_path):
    # XLA's optimisation level 0 in the subprocess: its runs are a few dozen updates, so its time
    # is compiling the sharded programs (measured alone, cold cache: 105 s at the default level,
    # 75 s at level 0). The comparisons below are across programs already (sharded against not).
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4 "
               "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false")
    args = [json.dumps(x) for x in (EXACT, AFTER_UPDATE, HOST)]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "four"), *args],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    four = json.loads(line[len("RESULT "):])

    def one_device(overrides, name):
        trainer = Trainer(config_lib.override(config_lib.tiny(), [*overrides, "run.devices=1"]),
                          str(tmp_path / name))
        return trainer, trainer.run(progress=False)

    single, ledger = one_device(EXACT, "exact")
    assert single.mesh is None and four["mesh"] == 4
    assert four["replay_spec"] == [None, "data"]  # replay streams split over the devices
    # identical real and simulated sample counts; the same actions were collected
    counts = [ledger.env_steps, ledger.episodes, ledger.updates, ledger.search, ledger.unroll,
              ledger.reanalyse, ledger.dream]
    assert counts == four["counts"] and counts[2] == 32
    assert np.asarray(single.replay.rows.action).tolist() == four["actions"]
    # the same parameters after the updates, up to the order of float sums
    params = [np.asarray(x).ravel() for x in jax.tree.leaves(single.train_state.params)]
    for a, b in zip(params, four["params"], strict=True):
        assert a.tolist() == pytest.approx(b, abs=1e-5, rel=1e-4)
    # the run's evaluation and `dreamer eval --run` (10 episodes each, the run's count: the
    # evaluation program the run compiled) returned the same on both device counts, and eval
    # replays the run's final evaluation (same parameters, key and episodes)
    expected_csv = (tmp_path / "exact" / "eval.csv").read_text()
    assert four["eval_csv"] == expected_csv and expected_csv.count("\n") == 2
    assert cli.main(["eval", "--run", str(tmp_path / "exact")]) == 0
    expected_returns = json.loads((tmp_path / "exact" / "eval.json").read_text())["returns"]
    assert four["eval_run"] == expected_returns and len(expected_returns) == 10
    final_mean = float(expected_csv.splitlines()[-1].split(",")[3])
    assert float(np.mean(np.float32(expected_returns))) == pytest.approx(final_mean, abs=1e-6)

    # collecting with updated parameters, stopped and resumed on the mesh: exact counts, and the
    # resumed run equals the uninterrupted one on the mesh bit for bit, evaluations included
    _, ledger = one_device(AFTER_UPDATE, "after")
    after = four["after"]
    # a buffer-wide pass after each of the two phases (each crosses a multiple of 20 updates),
    # over 32 then 64 stored rows: one search call of 128 roots x 8 simulations each
    assert after["counts"] == [ledger.env_steps, ledger.episodes, ledger.updates, ledger.search,
                               ledger.unroll, ledger.reanalyse, ledger.dream]
    assert ledger.updates == 64 and ledger.dream == 2 * 128 * 8
    assert after["bit_identical"] and after["eval_csv"] == after["straight_eval_csv"]
    # the resumed trainer started from the stopped one's checkpoint (32 real steps, after the
    # first update phase), its state restored onto the mesh as it was saved, shardings included
    assert four["resumed_from"] == 32 and four["restored"]
    expected_csv = (tmp_path / "after" / "eval.csv").read_text()
    assert _counts_columns(after["eval_csv"]) == _counts_columns(expected_csv)
    assert [row[0] for row in _counts_columns(expected_csv)] == ["env_steps", "32", "64", "80"]

    _, host_ledger = one_device(HOST, "host")
    host_ledger = host_ledger.to_json()
    assert four["host"]["mesh"] == 4
    for key in ("real", "simulated", "updates", "eval"):
        assert four["host"]["ledger"][key] == host_ledger[key], key
    assert host_ledger["updates"] == 32 and host_ledger["eval"]["episodes"] == 4
    assert host_ledger["real"]["env_steps"] == 80
    assert four["host"]["eval_csv"] == (tmp_path / "host" / "eval.csv").read_text()

    assert "run.num_envs=6 does not split over 4 devices" in four["errors"][0]
    assert "only 4 devices are present" in four["errors"][1]
