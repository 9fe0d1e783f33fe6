"""The Python API: `dreamer.fit(config, out)`, `dreamer.load(run_dir)`, `Agent.act` and
`Agent.evaluate`, with `import dreamer` as cheap as the command line's help."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from snapshot import snapshot

import dreamer
import worlds
from dreamer import cli
from dreamer.errors import UserError
from dreamer.ledger import SampleLedger


def test_import_dreamer_is_cheap_and_its_names_resolve():
    code = ("import sys, dreamer; cheap = 'jax' not in sys.modules; "
            "from dreamer.train import Trainer; "
            "print(cheap, callable(dreamer.fit), dreamer.train.Trainer is Trainer, "
            "callable(dreamer.load), "
            "dreamer.config.tiny().world == 'cartpole', hasattr(dreamer, 'no_such_name'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True"] * 5 + ["False"]


@pytest.mark.xdist_group("tiny_catch")  # tests/test_cli.py's tiny catch run: its programs
def test_train_load_act_and_evaluate(tmp_path):
    out = str(tmp_path / "run")
    config = dreamer.config.override(dreamer.config.tiny(), [
        "world=catch", "run.real_steps=96", "run.eval_episodes=4", "train.learning_starts=64"])
    ledger = dreamer.fit(config, out, progress=False)
    assert isinstance(ledger, SampleLedger) and ledger.env_steps == 96 and ledger.updates > 0
    before = snapshot(out)

    agent = dreamer.load(out)
    assert agent.ledger.env_steps == 96 and agent.config == config
    world = worlds.make("catch")
    _, ts = world.reset(jax.random.key(3))
    action = agent.act(ts.observation, key=jax.random.key(1), action_mask=ts.action_mask)
    assert isinstance(action, int) and 0 <= action < world.spec.num_actions
    assert agent.act(np.asarray(ts.observation)) == agent.act(ts.observation, temperature=0)
    for legal in range(3):  # the action is always a legal one
        mask = np.arange(3) == legal
        assert agent.act(ts.observation, action_mask=mask) == legal
        assert agent.act(ts.observation, key=jax.random.key(legal), temperature=1.0,
                         action_mask=mask) == legal
    with pytest.raises(UserError, match=r"observation of shape \(1, 10, 5, 1\).*no batch axis"):
        agent.act(np.zeros((1, 10, 5, 1), np.float32))
    with pytest.raises(UserError, match="action_mask must be 3 booleans"):
        agent.act(ts.observation, action_mask=[False, False, False])

    returns = agent.evaluate(4)
    assert returns.shape == (4,) and set(np.asarray(returns).tolist()) <= {-1.0, 1.0}
    # the run's own final evaluation (same parameters, key and episodes) ...
    final = open(os.path.join(out, "eval.csv")).read().splitlines()[-1].split(",")
    assert final[0] == "96" and float(final[3]) == pytest.approx(float(returns.mean()))
    assert snapshot(out) == before  # load, act and evaluate changed nothing in the run folder
    # ... and `dreamer eval` of it
    assert cli.main(["eval", "--run", out, "--episodes", "4"]) == 0
    result = json.load(open(os.path.join(out, "eval.json")))
    assert result["returns"] == [float(r) for r in returns]
