"""A real training subprocess killed with SIGKILL at a random moment and resumed ends bit-identical
to an uninterrupted run; SIGINT writes a final checkpoint."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from dreamer import config as config_lib
from dreamer.train import Trainer

ARGS = ["train", "--world", "catch", "--preset", "tiny", "--real-steps", "384", "--no-progress",
        "--set", "run.checkpoint_interval=32", "--set", "run.eval_episodes=0",
        "--set", "train.learning_starts=64"]


def _env():
    env = dict(os.environ)
    env["DREAMER_CACHE"] = jax.config.jax_compilation_cache_dir  # share compiled programs
    return env


def _start(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "dreamer.cli", *ARGS, "--out", out, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())


def _wait_for_checkpoint(out, proc, timeout=240):
    deadline = time.time() + timeout
    folder = os.path.join(out, "checkpoints")
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(folder) and any(d.isdigit() for d in os.listdir(folder)):
            return
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint appeared: {proc.stderr.read().decode()[-2000:]}")


def _final_state(out):
    cfg = config_lib.config_from_dict(json.load(open(os.path.join(out, "config.json"))))
    trainer = Trainer(cfg, out, resume=True)
    leaves = [np.asarray(x).tobytes() for x in jax.tree.leaves(trainer.train_state)]
    leaves += [np.asarray(x).tobytes() for x in jax.tree.leaves(trainer.replay)]
    trainer.checkpointer.close()
    return leaves, json.load(open(os.path.join(out, "ledger.json")))


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    straight = str(tmp_path / "straight")
    proc = _start(straight)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    expected_state, expected_ledger = _final_state(straight)

    killed = str(tmp_path / "killed")
    rng = random.Random(0)
    proc = _start(killed)
    for _ in range(2):
        _wait_for_checkpoint(killed, proc)
        time.sleep(rng.uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = _start(killed, "--resume")
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    state, ledger = _final_state(killed)
    for key in ("real", "simulated", "updates"):
        assert ledger[key] == expected_ledger[key]
    assert state == expected_state
    steps = [json.loads(line)["env_steps"] for line in open(os.path.join(killed, "metrics.jsonl"))]
    assert steps == sorted(set(steps))  # redone iterations are not logged twice


def test_sigint_writes_a_final_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    proc = _start(out, "--set", "run.checkpoint_interval=100000")
    deadline = time.time() + 300
    while time.time() < deadline and not os.path.exists(os.path.join(out, "metrics.jsonl")):
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    ledger = json.load(open(os.path.join(out, "ledger.json")))
    steps = [d for d in os.listdir(os.path.join(out, "checkpoints")) if d.isdigit()]
    assert steps == [str(ledger["real"]["env_steps"])]
    assert 0 < ledger["real"]["env_steps"] < 384
