"""`dreamer baseline`: rejax's DQN and PPO on our JAX worlds through a 5-value gymnax adapter, at
an exact real budget, written as a run folder that `dreamer report` reads."""

import argparse
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import worlds
from dreamer import baseline
from dreamer.baseline import BaselineError, GymnaxAdapter
from dreamer.errors import UserError

pytestmark = pytest.mark.xdist_group("baseline")  # the tiny runs share one module fixture

TINY = {"dqn": {"fill_buffer": 100, "num_envs": 2, "batch_size": 16},
        "ppo": {"num_envs": 4, "num_steps": 50, "num_minibatches": 4}}
"""Shrunk classic presets: a few hundred catch steps train both algorithms in seconds."""
TINY_STEPS = 603
"""Not a whole number of iterations of either algorithm (2 and 200 steps): the last iteration is
the smaller one, 3 copies x 1 step for PPO and 1 copy x 1 step for DQN."""


def _tiny_run(algo, out, seed=0):
    return baseline.train_baseline(algo, "catch", TINY_STEPS, seed, str(out), eval_interval=200,
                                   eval_episodes=20, eval_episodes_during=8,
                                   overrides=TINY[algo])


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """{algo: (run folder, final ledger)} of one tiny catch run per algorithm."""
    root = tmp_path_factory.mktemp("baseline")
    return {algo: (str(root / algo), _tiny_run(algo, root / algo)) for algo in baseline.ALGORITHMS}


@pytest.mark.parametrize("name", ["catch", "cartpole"])
def test_adapter_steps_as_the_world(name):
    """Same keys and actions: the adapter's observations (as float32), rewards and dones are the
    world's, across episode ends, and it counts the episodes that ended."""
    world = worlds.make(name)
    adapter = GymnaxAdapter(world)
    key = jax.random.PRNGKey(3)
    state, timestep = world.reset(key)
    obs, adapter_state = adapter.reset(key, adapter.default_params)
    assert obs.dtype == jnp.float32 and obs.shape == world.spec.observation_shape
    np.testing.assert_array_equal(obs, np.asarray(timestep.observation, np.float32))
    step, adapter_step = jax.jit(world.step), jax.jit(adapter.step)
    actions = jax.random.randint(jax.random.PRNGKey(4), (40,), 0, world.spec.num_actions)
    ends = 0
    for t, action in enumerate(actions):
        k = jax.random.fold_in(key, t)
        state, timestep = step(state, action, k)
        obs, adapter_state, reward, done, _ = adapter_step(k, adapter_state, action,
                                                           adapter.default_params)
        np.testing.assert_array_equal(obs, np.asarray(timestep.observation, np.float32))
        assert float(reward) == float(timestep.reward)
        assert bool(done) == bool(timestep.terminated | timestep.truncated)
        ends += int(done)
    assert ends > 0  # the comparison crossed an auto-reset
    assert int(adapter_state.episodes) == ends


def test_adapter_spaces():
    adapter = GymnaxAdapter(worlds.make("catch"))
    assert adapter.action_space().n == 3
    assert adapter.observation_space().shape == (10, 5, 1)
    assert adapter.default_params.max_steps_in_episode == 9


def test_minatar_q_network_is_the_papers():
    """The shifted-copies convolution is a valid 3x3 convolution (checked against lax.conv), and
    the network has the paper's parameter count: 3*3*C*16+16, 8*8*16*128+128, 128*A+A."""
    network = baseline._minatar_q_network()(action_dim=6)
    obs = jax.random.uniform(jax.random.PRNGKey(0), (2, 10, 10, 4))
    params = network.init(jax.random.PRNGKey(1), obs)
    sizes = {k: v["kernel"].shape for k, v in params["params"].items()}
    assert sizes == {"Dense_0": (36, 16), "Dense_1": (1024, 128), "Dense_2": (128, 6)}
    kernel = params["params"]["Dense_0"]["kernel"].reshape(3, 3, 4, 16)  # (i, j, C) order
    conv = jax.lax.conv_general_dilated(obs, kernel, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    hidden = jax.nn.relu(conv + params["params"]["Dense_0"]["bias"]).reshape(2, -1)
    hidden = jax.nn.relu(hidden @ params["params"]["Dense_1"]["kernel"]
                         + params["params"]["Dense_1"]["bias"])
    q = hidden @ params["params"]["Dense_2"]["kernel"] + params["params"]["Dense_2"]["bias"]
    # float32 matmuls in another order than flax's: rounding only
    np.testing.assert_allclose(network.apply(params, obs), q, rtol=1e-5, atol=1e-5)


def test_last_iteration_shape():
    """100,000 steps of the MinAtar PPO preset (64 x 128 per iteration) end with 1,696 steps:
    53 copies x 32 steps in 8 minibatches; a prime remainder takes one copy."""
    ppo = argparse.Namespace(num_envs=64, num_steps=128, num_minibatches=8)
    assert 100_000 % (64 * 128) == 1_696
    assert baseline._last_iteration_shape("ppo", ppo, 1_696) == (53, 32, 8)
    assert baseline._last_iteration_shape("ppo", ppo, 103) == (1, 103, 1)
    dqn = argparse.Namespace(num_envs=10)
    assert baseline._last_iteration_shape("dqn", dqn, 7) == (7, 1, 0)


@pytest.mark.parametrize("algo", baseline.ALGORITHMS)
def test_tiny_run_writes_a_run_folder(tiny_runs, algo):
    """The exact budget, a model-free ledger, eval.csv in `dreamer train`'s columns, the config
    with algorithm, hyperparameters, rejax version and seed; `dreamer report` reads it."""
    from dreamer.ledger import EVAL_COLUMNS
    from dreamer.report import load_run

    out, ledger = tiny_runs[algo]
    assert ledger.env_steps == TINY_STEPS and ledger.frames == TINY_STEPS
    with open(os.path.join(out, "ledger.json")) as f:
        saved = json.load(f)
    assert saved["real"]["env_steps"] == TINY_STEPS
    assert saved["simulated"]["total"] == 0 and saved["dream_ratio"] == 0
    assert saved["updates"] > 0 and saved["wall_seconds"] > 0
    # catch's episodes last 9 steps: each copy finishes (its steps // 9), and the copies share
    # the budget as evenly as the last, smaller iteration allows (the first copies step once more)
    n = TINY[algo]["num_envs"]
    copy_steps = [TINY_STEPS // n + (i < TINY_STEPS % n) for i in range(n)]
    assert saved["real"]["episodes"] == sum(steps // 9 for steps in copy_steps)
    with open(os.path.join(out, "eval.csv")) as f:
        rows = f.read().splitlines()
    assert rows[0] == EVAL_COLUMNS
    steps = [int(r.split(",")[0]) for r in rows[1:]]
    # DQN evaluates at each 200; PPO's iterations are 200 steps: the same points.
    assert steps == [200, 400, 600, TINY_STEPS]
    assert [int(r.split(",")[-1]) for r in rows[1:]] == [8, 8, 8, 20]
    assert all(r.split(",")[2] == "0" for r in rows[1:])
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    assert config["algorithm"] == algo and config["seed"] == 0 and config["library"] == "rejax"
    assert config["rejax_version"] == "0.1.3"
    assert config["hyperparameters"]["num_envs"] == TINY[algo]["num_envs"]
    run = load_run(out)
    assert run["curve"][-1, 0] == TINY_STEPS and run["curve"][-1, 1] == 0


def test_tiny_runs_in_one_report(tiny_runs, tmp_path):
    from dreamer.report import build_report

    text = build_report([tiny_runs["dqn"][0], tiny_runs["ppo"][0]], str(tmp_path / "report"))
    assert text.count("| catch |") == 2
    assert "| catch | dqn (rejax) |" in text and "| catch | ppo (rejax) |" in text
    assert (tmp_path / "report" / "catch.png").exists()


@pytest.mark.parametrize("algo", baseline.ALGORITHMS)
def test_same_seed_same_eval_csv(tiny_runs, tmp_path, algo):
    """A rerun with the seed rewrites eval.csv byte for byte (returns, updates, steps)."""
    out, _ = tiny_runs[algo]
    _tiny_run(algo, tmp_path / "again")
    with open(os.path.join(out, "eval.csv")) as f, open(tmp_path / "again" / "eval.csv") as g:
        assert f.read() == g.read()


def test_learns_catch_beyond_random(tmp_path):
    """PPO with rejax's CartPole settings on catch, 10,000 real steps (~25 s on one core): the
    final greedy return beats a uniform-random policy's, measured here, by a clear margin."""
    ledger = baseline.train_baseline("ppo", "catch", 10_000, 0, str(tmp_path / "ppo"),
                                     eval_interval=10_000)
    adapter = GymnaxAdapter(worlds.make("catch"))

    def uniform(params, obs, key):
        return jax.random.randint(key, (obs.shape[0],), 0, adapter.num_actions)

    random_returns = jax.jit(lambda key: baseline.evaluate_policy(
        adapter, uniform, None, key, 500))(jax.random.PRNGKey(0))
    random_mean = float(random_returns.mean())
    assert -0.8 < random_mean < -0.4  # catch by chance about a fifth of the time
    assert ledger.eval_episodes == 100
    assert ledger.eval_mean_return > random_mean + 1.0, (ledger.eval_mean_return, random_mean)


@pytest.mark.parametrize("algo, world, steps, needle", [
    ("sac", "catch", 100, "--algo dqn or --algo ppo"),
    ("dqn", "atari/pong", 100, "host world"),
    ("ppo", "twx/coin", 100, "host world"),
    ("ppo", "text/coin", 100, "masks actions"),
    ("dqn", "catch", 0, "--real-steps must be > 0"),
    ("dqn", "catch", -5, "--real-steps must be > 0"),
])
def test_bad_input_is_one_line(tmp_path, algo, world, steps, needle):
    with pytest.raises(BaselineError) as error:
        baseline.train_baseline(algo, world, steps, 0, str(tmp_path / "run"))
    assert isinstance(error.value, UserError)
    assert needle in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_out_folder_errors(tiny_runs, tmp_path):
    """A folder that holds a run is refused, and so is one that cannot be made."""
    with pytest.raises(BaselineError, match="already holds a run"):
        baseline.train_baseline("dqn", "catch", 100, 0, tiny_runs["dqn"][0])
    (tmp_path / "file").write_text("")
    with pytest.raises(BaselineError, match="not writable"):
        baseline.train_baseline("dqn", "catch", 100, 0, str(tmp_path / "file" / "run"))


def test_cli_glue(tmp_path):
    """`add_parser` gives the options `run` reads; a bad --set fails before any training."""
    parser = argparse.ArgumentParser()
    baseline.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["baseline", "--algo", "dqn", "--world", "minatar/breakout",
                              "--real-steps", "100000", "--set", "learning_rate=1e-4"])
    assert (args.algo, args.world, args.real_steps, args.seed) == ("dqn", "minatar/breakout",
                                                                   100_000, 0)
    assert baseline.parse_overrides(args.overrides) == ({"learning_rate": 1e-4}, {})
    assert baseline.parse_overrides(
        ["world_options.sticky_action_prob=0.1", "world_options.ramping=false", "gamma=0.9"]) == (
        {"gamma": 0.9}, {"sticky_action_prob": 0.1, "ramping": False})
    with pytest.raises(BaselineError, match="name the option"):
        baseline.parse_overrides(["world_options.=0.1"])
    args.overrides = ["learning_rat=1e-4"]
    args.out = str(tmp_path / "run")
    with pytest.raises(BaselineError, match="not a dqn setting of the minatar preset"):
        baseline.run(args)
    assert not (tmp_path / "run").exists()


def test_world_options_reach_training_and_the_config(tmp_path):
    """`--set world_options.rows=6` through the CLI: catch on 6 rows, whose episodes last 5 steps
    (10 rows: 9), so the ledger's episode count shows the option reached the trained copies; the
    config records it. MinAtar's sticky actions come in the same way, and a bad option is one
    line, before any folder is made."""
    from dreamer import cli
    from worlds.minatar import StickyActions

    out = tmp_path / "rows6"
    tiny = [a for k, v in TINY["dqn"].items() for a in ("--set", f"{k}={v}")]
    argv = ["baseline", "--algo", "dqn", "--world", "catch", "--real-steps", "400",
            "--eval-interval", "400", "--eval-episodes", "4", "--out", str(out), *tiny]
    assert cli.main([*argv, "--set", "world_options.rows=6"]) == 0
    with open(out / "config.json") as f:
        assert json.load(f)["world_options"] == {"rows": 6}
    with open(out / "ledger.json") as f:
        assert json.load(f)["real"]["episodes"] == 2 * (200 // 5)  # 2 copies x 200 steps each
    assert isinstance(baseline.make_world("minatar/breakout", {"sticky_action_prob": 0.1}),
                      StickyActions)
    with pytest.raises(worlds.WorldOptionError) as error:
        baseline.train_baseline("dqn", "minatar/breakout", 100, 0, str(tmp_path / "bad"),
                                world_options={"sticky_action_prob": 1.5})
    assert "sticky_action_prob must be in [0, 1)" in str(error.value)
    assert "\n" not in str(error.value) and not (tmp_path / "bad").exists()


def test_presets_are_the_sources():
    """The MinAtar paper's DQN and gymnax-blines' PPO (their docstrings give the sources)."""
    dqn = baseline.hyperparameters("dqn", "minatar/breakout")
    assert (dqn["batch_size"], dqn["buffer_size"], dqn["fill_buffer"], dqn["target_update_freq"],
            dqn["learning_rate"], dqn["eps_end"], dqn["exploration_steps"]) == (
        32, 100_000, 5_000, 1_000, 2.5e-4, 0.1, 100_000)
    ppo = baseline.hyperparameters("ppo", "minatar/freeway")
    assert (ppo["num_envs"], ppo["num_steps"], ppo["num_minibatches"], ppo["num_epochs"],
            ppo["gamma"]) == (64, 128, 8, 4, 0.999)
    assert baseline.preset_name("cartpole") == "classic"


def test_import_is_light():
    """The CLI imports this module to build its parser: no JAX, rejax or worlds then."""
    code = ("import sys, dreamer.baseline; "
            "print(sorted(m for m in ('jax', 'rejax', 'worlds', 'flax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
