"""Greedy episodes of a text/quest agent: per step, the search's policy and, per legal action,
the model's Q (r^ + g V^(dyn)) against the Q from the real next observation (r + g V^(repr(next))).

JAX worlds and memoryless agents only. Run from a checkout: python qprobe.py RUN_DIR [EPISODES].
`load` and `one_step` are shared with vcorr.py.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from dreamer import agent as agent_lib
from dreamer.actor import make_act
from dreamer.networks import latent_model
from dreamer.transforms import categorical_to_scalar


def load(run: str, temperature: float):
    """-> (config, world, params, fns, act): the run's agent, its world, and its jitted
    evaluation search `act(params, key, obs [1, ...], mask [1, A])` at `temperature`."""
    agent = agent_lib.load(run)
    config, world = agent.config, agent.world  # the run's JAX world, built with its options
    search = make_act(agent.model, config, explore=False)
    act = jax.jit(lambda p, k, o, m: search(p, k, o, m, temperature))
    return config, world, agent.params, latent_model(agent.model), act


def one_step(fns, num_actions: int):
    """Jitted `(params, obs) -> (prior [A], V^ (), r^ [A], V^(dynamics) [A])`: the value head at
    the observation and the model's reward and value one step after each action."""

    @jax.jit
    def step(p, obs):
        latent = fns.represent(p, obs[None])
        prior_logits, value_logits = fns.predict(p, latent)
        after = fns.dynamics(p, jnp.repeat(latent, num_actions, 0), jnp.arange(num_actions))
        prefix, _ = fns.value_prefix(p, after, fns.initial_lstm(num_actions))
        _, after_value = fns.predict(p, after)
        vs = fns.value_support
        return (jax.nn.softmax(prior_logits[0]), categorical_to_scalar(value_logits, vs)[0],
                categorical_to_scalar(prefix, fns.reward_support),
                categorical_to_scalar(after_value, vs))

    return step


def main(run: str, episodes: int) -> None:
    config, world, params, fns, act = load(run, 0.0)
    gamma, names = config.train.discount, world.spec.action_names
    model_step = one_step(fns, len(names))
    value = jax.jit(lambda p, obs: categorical_to_scalar(
        fns.predict(p, fns.represent(p, obs))[1], fns.value_support))

    key = jax.random.key(1)
    for episode in range(episodes):
        state, ts = world.reset(jax.random.fold_in(key, episode))
        for t in range(world.spec.max_episode_steps):
            legal = np.flatnonzero(np.asarray(ts.action_mask))
            outs = [world.step(state, jnp.int32(a), jax.random.key(0)) for a in range(len(names))]
            nexts = jnp.stack([o[1].observation for o in outs])
            rewards = np.array([float(o[1].reward) for o in outs])
            prior, v, r_hat, v_after = map(np.asarray, model_step(params, ts.observation))
            v_real = np.asarray(value(params, nexts))
            out = act(params, jax.random.fold_in(key, 1000 * episode + t), ts.observation[None],
                      ts.action_mask[None])
            policy = np.asarray(out.policy[0])
            print(f"[{t}] {world.render(ts.observation)}  V^={v:.2f}")
            for b in legal:
                print(f"     {names[b]:14s} prior {prior[b]:.2f} search {policy[b]:.2f} | model r^ "
                      f"{r_hat[b]:+.2f} V^dyn {v_after[b]:.2f} Q {r_hat[b] + gamma * v_after[b]:.2f}"
                      f" | real r {rewards[b]:.0f} V^next {v_real[b]:.2f} "
                      f"Q {rewards[b] + gamma * v_real[b]:.2f}")
            state, ts = world.step(state, out.action[0], jax.random.key(0))
            if bool(ts.terminated) or bool(ts.truncated):
                print("END", float(ts.reward))
                break


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
