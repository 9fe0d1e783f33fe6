"""`dreamer baseline`: model-free DQN and PPO from rejax on the same JAX worlds, at an exact real
budget, written as a run folder that `dreamer report` puts beside EfficientZero runs.

rejax (a maintained JAX library of RL algorithms) trains on environments with the older gymnax
interface, whose `step` returns 5 values. `GymnaxAdapter` presents a `worlds.JaxWorld` that way,
so rejax steps our own worlds (the same code `dreamer train` steps); the adapter is handed to
rejax as an object, because rejax given a gymnax 1.0.x name fails in its own evaluation
(it unpacks 5 values, gymnax 1.0.x returns 6).

The training loop is rejax's own `train_iteration`, called in jitted chunks between evaluations
(rejax's `train` would evaluate with its own rules and round the budget up to whole evaluation
periods). The real budget is exact: one DQN iteration steps `num_envs` copies once, one PPO
iteration steps `num_envs` copies `num_steps` times; a budget that is not a whole number of
iterations ends with one smaller iteration on the first copies (see `_last_iteration_shape`).

Evaluation plays the greedy policy (DQN: argmax Q; PPO: the most likely action) through the
adapter in fresh copies of the world, keyed apart from training; its episodes are not training
samples and the ledger does not count them.

Module import stays light (no JAX, no rejax): `add_parser` and `run` are the CLI's.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from typing import Any, NamedTuple

from dreamer.errors import UserError

ALGORITHMS = ("dqn", "ppo")
EXPLORATION_STEPS_KEY = "exploration_steps"


class BaselineError(UserError, ValueError):
    """A baseline that cannot run as asked (algorithm, world, budget, option); the message says
    how to fix it."""


# --- hyperparameters -----------------------------------------------------------------------------

def minatar_dqn() -> dict:
    """DQN on MinAtar, as the MinAtar paper trains it (Young & Tian 2019, arXiv:1903.03176,
    Table 2 / its reference code `examples/dqn.py` in kenjyoung/MinAtar):

    - network: conv 16 filters 3x3 stride 1 (no padding) + ReLU, dense 128 + ReLU, linear Q
      (`agent="minatar_conv"`; the paper's QNetwork);
    - batch_size 32, buffer_size 100,000, one update per real step (num_envs 1, num_epochs 1:
      the paper's TRAINING_FREQ 1), fill_buffer 5,000 (REPLAY_START_SIZE; uniform random actions
      until then), target network copied every 1,000 steps (target_update_freq 1,000 with
      polyak 0: a hard copy), learning_rate 2.5e-4 (STEP_SIZE), gamma 0.99, epsilon 1.0 -> 0.1
      annealed linearly over the first 100,000 steps (`exploration_steps`; rejax anneals from
      step 0, the paper from the end of the replay start, so at step 100k epsilon is 0.1 here and
      0.145 there), plain DQN targets (ddqn False).

    Fixed by rejax 0.1.3 and so not the paper's: Adam instead of centered RMSProp (momentum 0.95,
    squared-gradient momentum 0.95, min squared gradient 0.01), and a squared TD loss instead of
    the Huber loss.
    """
    return {
        "agent": "minatar_conv", "num_envs": 1, "num_epochs": 1, "batch_size": 32,
        "buffer_size": 100_000, "fill_buffer": 5_000, "target_update_freq": 1_000, "polyak": 0.0,
        "learning_rate": 2.5e-4, "gamma": 0.99, "eps_start": 1.0, "eps_end": 0.1,
        EXPLORATION_STEPS_KEY: 100_000, "ddqn": False,
    }


def minatar_ppo() -> dict:
    """PPO on MinAtar, as gymnax-blines trains it on gymnax's MinAtar ports (RobertTLange/
    gymnax-blines `agents/<Game>-MinAtar/ppo.yaml`, the same for all five games; gymnax's README
    reports its returns):

    - separate actor and critic MLPs, 2 hidden layers of 256, ReLU, on the flattened frame
      (`Categorical-MLP`, `num_hidden_units` 256, `num_hidden_layers` 2, `flatten_3d`);
    - num_envs 64, num_steps 128, num_minibatches 8, num_epochs 4, learning_rate 5e-4,
      gamma 0.999, gae_lambda 0.95, clip_eps 0.2, ent_coef 0.01, vf_coef 0.5, max_grad_norm 0.5.

    Not the source's: its learning rate warms up over the first 5% of training (rejax's is
    constant), and rejax applies `max_grad_norm` as an element-wise clip (`optax.clip`), where
    gymnax-blines clips the global norm.
    """
    return {
        "agent_kwargs": {"hidden_layer_sizes": [256, 256], "activation": "relu"},
        "num_envs": 64, "num_steps": 128, "num_minibatches": 8, "num_epochs": 4,
        "learning_rate": 5e-4, "gamma": 0.999, "gae_lambda": 0.95, "clip_eps": 0.2,
        "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5,
    }


def classic_dqn() -> dict:
    """DQN for the small worlds (cartpole, catch): rejax's own CartPole-v1 config
    (keraJLi/rejax `configs/gymnax/cartpole.yaml`, `dqn:`): dueling Q-network with 2 hidden
    layers of 64 (rejax's default size), swish; num_envs 10, buffer_size 50,000, fill_buffer
    5,000, batch_size 100, num_epochs 5 (updates per iteration of 10 steps), learning_rate 1e-3,
    max_grad_norm 10, polyak 0.98 every step, epsilon 1 -> 0.05 over the first half of the budget
    (exploration_fraction 0.5), gamma 0.99, double DQN."""
    return {
        "agent": "DuelingQNetwork", "agent_kwargs": {"activation": "swish"}, "num_envs": 10,
        "buffer_size": 50_000, "fill_buffer": 5_000, "batch_size": 100, "num_epochs": 5,
        "learning_rate": 1e-3, "max_grad_norm": 10.0, "target_update_freq": 1, "polyak": 0.98,
        "eps_start": 1.0, "eps_end": 0.05, "exploration_fraction": 0.5, "gamma": 0.99,
        "ddqn": True,
    }


def classic_ppo() -> dict:
    """PPO for the small worlds (cartpole, catch): rejax's own CartPole-v1 config
    (keraJLi/rejax `configs/gymnax/cartpole.yaml`, `ppo:`): actor and critic MLPs of 2 x 64
    (rejax's default size), tanh; num_envs 5, num_steps 100, num_epochs 5, num_minibatches 5,
    learning_rate 7.5e-4, max_grad_norm 0.5, gamma 0.99, gae_lambda 0.95, clip_eps 0.2,
    ent_coef 0.01, vf_coef 0.5."""
    return {
        "agent_kwargs": {"hidden_layer_sizes": [64, 64], "activation": "tanh"},
        "num_envs": 5, "num_steps": 100, "num_epochs": 5, "num_minibatches": 5,
        "learning_rate": 7.5e-4, "max_grad_norm": 0.5, "gamma": 0.99, "gae_lambda": 0.95,
        "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
    }


PRESETS = {("minatar", "dqn"): minatar_dqn, ("minatar", "ppo"): minatar_ppo,
           ("classic", "dqn"): classic_dqn, ("classic", "ppo"): classic_ppo}


def preset_name(world_name: str) -> str:
    """`minatar` for `minatar/<game>`, else `classic` (rejax's CartPole settings)."""
    return "minatar" if world_name.startswith("minatar/") else "classic"


def hyperparameters(algo: str, world_name: str, overrides: dict | None = None) -> dict:
    """The preset of (world family, algorithm) with `overrides` applied.

    Raises:
      BaselineError: an unknown algorithm, or an override the preset does not have.
    """
    check_algo(algo)
    preset = PRESETS[preset_name(world_name), algo]()
    for key, value in (overrides or {}).items():
        if key not in preset:
            raise BaselineError(
                f"--set {key}: not a {algo} setting of the {preset_name(world_name)} preset; "
                f"it has {', '.join(sorted(preset))}")
        preset[key] = value
    return preset


# --- checks --------------------------------------------------------------------------------------

def check_algo(algo: str) -> None:
    if algo not in ALGORITHMS:
        raise BaselineError(f"unknown algorithm {algo!r}: use --algo dqn or --algo ppo")


def check_budget(real_steps: int) -> None:
    if real_steps <= 0:
        raise BaselineError(f"--real-steps must be > 0 (got {real_steps}): give the real env "
                            "steps to train on, e.g. --real-steps 100000")


def make_world(name: str, options: dict | None = None):
    """The JAX world `name` built with `options` (e.g. `{"sticky_action_prob": 0.1}`), or a
    BaselineError for a world rejax cannot step (a host world, or one that masks actions); a bad
    option raises the registry's one-line `WorldOptionError`."""
    import worlds

    if worlds.kind(name) == "host":
        raise BaselineError(
            f"{name} is a host world (stepped outside JAX) and rejax trains only on JAX worlds: "
            "use a JAX world such as catch, cartpole or minatar/breakout (`dreamer worlds`)")
    world = worlds.make(name, **(options or {}))
    if world.spec.has_action_mask:
        raise BaselineError(
            f"{name} masks actions, which rejax's DQN and PPO cannot honour: use a world without "
            "action masks such as catch, cartpole or minatar/breakout")
    return world


# --- the adapter ---------------------------------------------------------------------------------

class AdapterParams(NamedTuple):
    """The environment parameters rejax passes along (our worlds take none)."""

    max_steps_in_episode: int


class AdapterState(NamedTuple):
    """A world's state as rejax carries it.

    Attributes:
      world: the world's `EpisodeState`.
      episodes: [] int32 episodes finished in this copy so far (the ledger's real.episodes).
    """

    world: Any
    episodes: Any


class GymnaxAdapter:
    """A `worlds.JaxWorld` behind the older 5-value gymnax `Environment` interface that rejax
    steps: `reset(key, params) -> (obs, state)`, `step(key, state, action, params) -> (obs,
    state, reward, done, info)`, `observation_space`, `action_space`, `default_params`.

    The step is the world's own (time limit and auto-reset included: when `done`, the
    observation is the first of the next episode, the reward the last of the finished one), and
    `done = terminated | truncated`, as in gymnax before 1.0. Observations are float32.
    """

    def __init__(self, world):
        self.world = world
        self.spec = world.spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def num_actions(self) -> int:
        return self.spec.num_actions

    @property
    def default_params(self) -> AdapterParams:
        return AdapterParams(max_steps_in_episode=self.spec.max_episode_steps)

    def reset(self, key, params=None):
        """(observation [*observation_shape] float32, AdapterState) of a fresh episode."""
        import jax.numpy as jnp

        del params
        state, timestep = self.world.reset(key)
        return (jnp.asarray(timestep.observation, jnp.float32),
                AdapterState(world=state, episodes=jnp.zeros((), jnp.int32)))

    def step(self, key, state: AdapterState, action, params=None):
        """(observation, state, reward [] float32, done [] bool, info) of one world step."""
        import jax.numpy as jnp

        del params
        world_state, timestep = self.world.step(state.world, action, key)
        done = timestep.terminated | timestep.truncated
        info = {"terminated": timestep.terminated, "truncated": timestep.truncated}
        return (jnp.asarray(timestep.observation, jnp.float32),
                AdapterState(world=world_state, episodes=state.episodes + done.astype(jnp.int32)),
                timestep.reward, done, info)

    def observation_space(self, params=None):
        from gymnax.environments import spaces

        low, high = (0.0, 1.0) if self.spec.observation_kind == "image" else (-math.inf, math.inf)
        return spaces.Box(low, high, self.spec.observation_shape)

    def action_space(self, params=None):
        from gymnax.environments import spaces

        return spaces.Discrete(self.spec.num_actions)

    def __repr__(self):
        return f"<GymnaxAdapter {self.spec.name}>"


# --- networks ------------------------------------------------------------------------------------

@functools.cache
def _minatar_q_network():
    """The MinAtar paper's Q-network as a flax module with rejax's Q-network methods."""
    import jax.numpy as jnp
    from flax import linen as nn

    class MinAtarQNetwork(nn.Module):
        """Conv 16 x 3x3 (valid) + ReLU, dense 128 + ReLU, linear [B, num_actions] Q-values.

        The convolution is one Dense over the 9 shifted copies of the input (the same function
        as a valid 3x3 `nn.Conv`, with the same fan-in for its initialiser): on XLA:CPU that is
        ~4x faster than `nn.Conv` on 10x10 frames (shared/MEASURED.md).
        """

        action_dim: int

        @nn.compact
        def __call__(self, obs):  # obs [B, H, W, C]
            height, width = obs.shape[1] - 2, obs.shape[2] - 2
            patches = jnp.concatenate(
                [obs[:, i:i + height, j:j + width, :] for i in range(3) for j in range(3)],
                axis=-1)  # [B, H-2, W-2, 9C]
            x = nn.relu(nn.Dense(16)(patches))
            x = nn.relu(nn.Dense(128)(x.reshape((x.shape[0], -1))))
            return nn.Dense(self.action_dim)(x)

        def take(self, obs, action):
            q = self(obs)
            return jnp.take_along_axis(q, action[:, None], axis=1).squeeze(1)

    return MinAtarQNetwork


# --- rejax ---------------------------------------------------------------------------------------

def make_algorithm(algo: str, adapter: GymnaxAdapter, settings: dict, real_steps: int):
    """The rejax algorithm (a frozen pytree) for `settings` (a preset) on `adapter`."""
    import rejax
    from rejax.networks import EpsilonGreedyPolicy

    config = json.loads(json.dumps(settings))  # a deep copy; rejax pops from it
    if EXPLORATION_STEPS_KEY in config:
        # rejax anneals epsilon over a fraction of total_timesteps; the source gives steps
        config["exploration_fraction"] = config.pop(EXPLORATION_STEPS_KEY) / real_steps
    if "agent_kwargs" in config and "hidden_layer_sizes" in config["agent_kwargs"]:
        config["agent_kwargs"]["hidden_layer_sizes"] = tuple(
            config["agent_kwargs"]["hidden_layer_sizes"])
    custom_agent = config.get("agent") == "minatar_conv"
    if custom_agent:
        config.pop("agent")
    algorithm = rejax.get_algo(algo).create(
        env=adapter, env_params=adapter.default_params, total_timesteps=real_steps,
        skip_initial_evaluation=True, **config)
    if custom_agent:
        network = EpsilonGreedyPolicy(_minatar_q_network())
        algorithm = algorithm.replace(agent=network(action_dim=adapter.num_actions))
    return algorithm


def steps_per_iteration(algo: str, algorithm) -> int:
    """Real steps of one rejax training iteration."""
    return algorithm.num_envs * (algorithm.num_steps if algo == "ppo" else 1)


def _last_iteration_shape(algo: str, algorithm, remainder: int) -> tuple[int, int, int]:
    """(copies, steps per copy, minibatches) of a last iteration of exactly `remainder` real
    steps (0 < remainder < one iteration): the most copies (at most num_envs) that divide it,
    and for PPO the most minibatches (at most num_minibatches) that divide its batch."""
    copies = max(d for d in range(1, min(algorithm.num_envs, remainder) + 1) if remainder % d == 0)
    if algo == "dqn":
        return copies, 1, 0
    minibatches = max(d for d in range(1, algorithm.num_minibatches + 1) if remainder % d == 0)
    return copies, remainder // copies, minibatches


def _first_copies(ts, copies: int):
    """The training state restricted to its first `copies` world copies."""
    import jax

    take = lambda x: x[:copies]  # noqa: E731
    ts = ts.replace(env_state=jax.tree.map(take, ts.env_state), last_obs=take(ts.last_obs),
                    last_done=take(ts.last_done))
    if hasattr(ts, "rew_rms_state"):
        ts = ts.replace(rew_rms_state=ts.rew_rms_state.replace(
            returns=take(ts.rew_rms_state.returns)))
    return ts


def _greedy_policy(algo: str, algorithm):
    """(params of a training state, act(params, obs [B, ...], key) -> [B] greedy actions)."""
    import jax.numpy as jnp

    if algo == "dqn":
        return (lambda ts: ts.q_ts.params,
                lambda params, obs, key: jnp.argmax(algorithm.agent.apply(params, obs), axis=-1))

    def logits(module, obs):
        return module.action_logits(module.features(obs))

    return (lambda ts: ts.actor_ts.params,
            lambda params, obs, key: jnp.argmax(
                algorithm.actor.apply(params, obs, method=logits), axis=-1))


def _updates(algo: str, ts) -> int:
    """Optimiser steps taken so far (PPO: actor and critic step together, counted once)."""
    return int(ts.q_ts.step if algo == "dqn" else ts.actor_ts.step)


def evaluate_policy(adapter: GymnaxAdapter, act, params, key, episodes: int):
    """Returns [episodes] of the first episode of `episodes` fresh copies of the world under
    `act(params, obs [E, ...], key) -> [E] actions`, stepped through the adapter until each copy's
    episode ends (the world's time limit bounds it). Jit-compatible; `episodes` is static."""
    import jax
    import jax.numpy as jnp

    reset_key, key = jax.random.split(key)
    obs, state = jax.vmap(adapter.reset)(jax.random.split(reset_key, episodes))
    step = jax.vmap(adapter.step)

    def cond(carry):
        _, _, running, _, _, t = carry
        return running.any() & (t <= adapter.spec.max_episode_steps)

    def body(carry):
        state, obs, running, returns, key, t = carry
        key, act_key, step_key = jax.random.split(key, 3)
        action = act(params, obs, act_key)
        obs, state, reward, done, _ = step(jax.random.split(step_key, episodes), state, action)
        returns = returns + jnp.where(running, reward, 0.0)
        return state, obs, running & ~done, returns, key, t + 1

    carry = (state, obs, jnp.ones((episodes,), bool), jnp.zeros((episodes,), jnp.float32), key,
             jnp.zeros((), jnp.int32))
    return jax.lax.while_loop(cond, body, carry)[3]


# --- the run -------------------------------------------------------------------------------------

def default_out_dir(algo: str, world: str, seed: int) -> str:
    return os.path.join("runs", f"{algo}-{world.replace('/', '-').replace(':', '-')}-s{seed}")


def default_eval_interval(real_steps: int) -> int:
    """5,000 real steps (20 points at 100k), or a tenth of a smaller budget."""
    return min(5_000, max(1, real_steps // 10))


def train_baseline(algo: str, world: str, real_steps: int, seed: int, out_dir: str,
                   eval_interval: int | None = None, eval_episodes: int = 100,
                   eval_episodes_during: int = 32, overrides: dict | None = None,
                   world_options: dict | None = None, progress: bool = False):
    """Trains a rejax DQN or PPO agent on `world` for exactly `real_steps` real env steps and
    writes the run folder `out_dir`: config.json, ledger.json (simulated steps 0), eval.csv.

    Args:
      algo: "dqn" or "ppo".
      world: a JAX world without action masks, e.g. "minatar/breakout", "catch", "cartpole".
      real_steps: real env steps to train on (> 0), taken exactly.
      seed: the run's seed (training and evaluation keys derive from it).
      out_dir: the run folder (created; refused if it already holds a run).
      eval_interval: real steps between evaluations (default `default_eval_interval`); PPO
        evaluates at the first iteration boundary at or past each multiple.
      eval_episodes: greedy episodes of the final evaluation (after the last real step).
      eval_episodes_during: greedy episodes of each earlier evaluation.
      overrides: {setting: value} over the preset (`hyperparameters`).
      world_options: options the world is built with, for training and evaluation alike (as
        `dreamer train` builds a MinAtar world), e.g. {"sticky_action_prob": 0.1}; recorded in
        config.json as `world_options` when given.
      progress: print one line per evaluation.

    Returns:
      The final `SampleLedger`.

    Raises:
      BaselineError: an unknown algorithm, a world rejax cannot step, a budget <= 0, a bad
        option, or an out_dir that already holds a run.
    """
    check_algo(algo)
    check_budget(real_steps)
    eval_interval = default_eval_interval(real_steps) if eval_interval is None else eval_interval
    if eval_interval <= 0 or eval_episodes <= 0 or eval_episodes_during <= 0:
        raise BaselineError("--eval-interval and --eval-episodes must be > 0 (got "
                            f"{eval_interval} and {eval_episodes})")
    if os.path.exists(os.path.join(out_dir, "ledger.json")):
        raise BaselineError(f"--out {out_dir} already holds a run: choose another folder or "
                            "delete it")
    settings = hyperparameters(algo, world, overrides)
    start = time.perf_counter()
    env = make_world(world, world_options)

    from importlib.metadata import version

    import jax
    import numpy as np

    from dreamer.ledger import EVAL_COLUMNS, SampleLedger

    adapter = GymnaxAdapter(env)
    algorithm = make_algorithm(algo, adapter, settings, real_steps)
    config = {
        "algorithm": algo, "library": "rejax", "rejax_version": version("rejax"),
        "world": world, "seed": seed, "preset": preset_name(world),
        "run": {"real_steps": real_steps, "eval_interval": eval_interval,
                "eval_episodes": eval_episodes, "eval_episodes_during": eval_episodes_during},
        "hyperparameters": settings,
    }
    if world_options:  # runs without options keep the config they always had
        config["world_options"] = dict(sorted(world_options.items()))
    try:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
    except OSError as e:
        raise BaselineError(f"--out {out_dir}: not writable ({e.strerror}); choose another "
                            "folder") from None
    ledger = SampleLedger(world=world, seed=seed, config=config)
    eval_path = os.path.join(out_dir, "eval.csv")
    with open(eval_path, "w") as f:
        f.write(EVAL_COLUMNS + "\n")

    train_key, eval_root = jax.random.split(jax.random.PRNGKey(seed))
    ts = jax.jit(algorithm.init_state)(train_key)  # eager, its many small ops take seconds
    params_of, act = _greedy_policy(algo, algorithm)

    @functools.partial(jax.jit, static_argnums=2)
    def evaluate(params, key, episodes):
        return evaluate_policy(adapter, act, params, key, episodes)

    def chunk(algorithm):
        return jax.jit(lambda ts, n: jax.lax.fori_loop(
            0, n, lambda _, ts: algorithm.train_iteration(ts), ts))

    def record(ts, episodes_done: int, episodes: int) -> None:
        steps = int(ts.global_step)  # rejax's own count: num_envs per step of the copies
        returns = np.asarray(evaluate(params_of(ts), jax.random.fold_in(eval_root, steps),
                                      episodes))
        ledger.env_steps = steps
        ledger.frames = steps * env.spec.frames_per_step
        ledger.episodes = episodes_done
        ledger.updates = _updates(algo, ts)
        ledger.eval_episodes = int(returns.size)
        ledger.eval_mean_return = float(returns.mean())
        ledger.eval_std_return = float(returns.std())
        ledger.wall_seconds = time.perf_counter() - start
        with open(eval_path, "a") as f:
            f.write(ledger.eval_row() + "\n")
        ledger.write(out_dir)
        if progress:
            print(f"dreamer baseline: {algo} {world} step {steps:,}/{real_steps:,}: return "
                  f"{ledger.eval_mean_return:.2f} over {returns.size} episodes, "
                  f"{ledger.updates:,} updates, {ledger.wall_seconds:.0f} s", flush=True)

    per_iteration = steps_per_iteration(algo, algorithm)
    iterations, remainder = divmod(real_steps, per_iteration)
    train = chunk(algorithm)
    steps, done_iterations, next_eval = 0, 0, eval_interval
    while done_iterations < iterations:
        n = min(iterations - done_iterations, -(-(next_eval - steps) // per_iteration))
        ts = train(ts, n)
        done_iterations += n
        steps += n * per_iteration
        if steps >= next_eval and steps < real_steps:
            record(ts, int(ts.env_state.episodes.sum()), eval_episodes_during)
            next_eval = (steps // eval_interval + 1) * eval_interval
    episodes_dropped = 0
    if remainder:
        copies, num_steps, minibatches = _last_iteration_shape(algo, algorithm, remainder)
        last = algorithm.replace(num_envs=copies)
        if algo == "ppo":
            last = last.replace(num_steps=num_steps, num_minibatches=minibatches)
        episodes_dropped = int(ts.env_state.episodes[copies:].sum())
        ts = chunk(last)(_first_copies(ts, copies), 1)
    if int(ts.global_step) != real_steps:  # a bug here, never the user's
        raise AssertionError(f"took {int(ts.global_step)} real steps for {real_steps}")
    record(ts, episodes_dropped + int(ts.env_state.episodes.sum()), eval_episodes)
    return ledger


# --- the command line ----------------------------------------------------------------------------

def add_parser(subparsers) -> None:
    """Adds `dreamer baseline` and its options to the CLI's subparsers (imports nothing heavy)."""
    p = subparsers.add_parser(
        "baseline", help="train a model-free baseline (rejax DQN or PPO) at a real budget",
        description="Model-free DQN or PPO from rejax on a JAX world, for exactly --real-steps "
        "real env steps, with greedy evaluations; writes a run folder (config.json, ledger.json "
        "with simulated steps 0, eval.csv) that `dreamer report` reads beside EfficientZero "
        "runs.")
    p.add_argument("--algo", required=True, help="dqn or ppo")
    p.add_argument("--world", required=True, help="a JAX world, e.g. minatar/breakout, cartpole")
    p.add_argument("--real-steps", type=int, required=True, help="real env steps to train on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="run folder (default runs/<algo>-<world>-s<seed>)")
    p.add_argument("--eval-interval", type=int, default=None,
                   help="real steps between evaluations (default 5,000, or a tenth of a smaller "
                   "budget)")
    p.add_argument("--eval-episodes", type=int, default=100,
                   help="greedy episodes of the final evaluation (default 100; 32 before it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hyperparameter of the preset, e.g. --set learning_rate=1e-4, "
                   "or set a world option, e.g. --set world_options.sticky_action_prob=0.1")


WORLD_OPTIONS_PREFIX = "world_options."


def parse_overrides(items: list[str]) -> tuple[dict, dict]:
    """({hyperparameter: value}, {world option: value}) from ["key=value", ...]: hyperparameter
    values read as JSON where they parse, `world_options.NAME=value` as `dreamer train` reads it."""
    from dreamer.config import parse_world_option

    overrides, world_options = {}, {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise BaselineError(f"--set {item}: write KEY=VALUE, e.g. --set learning_rate=1e-4")
        if key.startswith(WORLD_OPTIONS_PREFIX):
            name = key[len(WORLD_OPTIONS_PREFIX):]
            if not name:
                raise BaselineError(f"--set {item}: name the option, e.g. --set "
                                    "world_options.sticky_action_prob=0.1")
            world_options[name] = parse_world_option(text)
            continue
        try:
            overrides[key] = json.loads(text)
        except ValueError:
            overrides[key] = text
    return overrides, world_options


def run(args) -> int:
    """`dreamer baseline`: trains, prints the final ledger (without its config) as JSON."""
    check_algo(args.algo)
    check_budget(args.real_steps)
    overrides, world_options = parse_overrides(args.overrides)
    hyperparameters(args.algo, args.world, overrides)  # a bad --set fails before any JAX work
    out = args.out or default_out_dir(args.algo, args.world, args.seed)
    from dreamer.jax_setup import enable_compilation_cache, limit_malloc_arenas

    limit_malloc_arenas()  # before JAX starts its threads, as `dreamer train` does
    enable_compilation_cache()
    ledger = train_baseline(args.algo, args.world, args.real_steps, args.seed, out,
                            eval_interval=args.eval_interval, eval_episodes=args.eval_episodes,
                            overrides=overrides, world_options=world_options, progress=True)
    summary = ledger.to_json()
    summary.pop("config")
    print(json.dumps(summary))
    print(f"dreamer baseline: run folder {out}")
    return 0
