"""Episodes with a run's search sampled at T = 1: per step, the value head's prediction V^(o_t)
against the discounted return from t that followed; prints their correlation, means and error,
and the median gap between the best and worst legal action's one-step model Q.

JAX worlds and memoryless agents only. Run from a checkout: python vcorr.py RUN_DIR EPISODES.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import worlds
from dreamer import agent as agent_lib
from dreamer.actor import make_act
from dreamer.networks import latent_model
from dreamer.transforms import categorical_to_scalar


def main(run: str, episodes: int) -> None:
    config = agent_lib.read_config(run)
    world = worlds.make(config.world, **config.world_kwargs())
    agent = agent_lib.load(run, world, config)
    model, params, fns = agent.model, agent.params, latent_model(agent.model)
    gamma, num_actions = config.train.discount, world.spec.num_actions
    search = make_act(model, config, explore=False)
    act = jax.jit(lambda p, k, o, m: search(p, k, o, m, 1.0))
    step = jax.jit(world.step)

    @jax.jit
    def values(p, obs):
        latent = fns.represent(p, obs[None])
        _, value_logits = fns.predict(p, latent)
        after = fns.dynamics(p, jnp.repeat(latent, num_actions, 0), jnp.arange(num_actions))
        prefix, _ = fns.value_prefix(p, after, fns.initial_lstm(num_actions))
        _, after_value = fns.predict(p, after)
        q = (categorical_to_scalar(prefix, fns.reward_support)
             + gamma * categorical_to_scalar(after_value, fns.value_support))
        return categorical_to_scalar(value_logits, fns.value_support)[0], q

    key = jax.random.key(7)
    predicted, returns, gaps = [], [], []
    for episode in range(episodes):
        state, ts = world.reset(jax.random.fold_in(key, episode))
        rewards = []
        for t in range(world.spec.max_episode_steps):
            v, q = values(params, ts.observation)
            legal_q = np.asarray(q)[np.asarray(ts.action_mask)]
            gaps.append(legal_q.max() - legal_q.min() if len(legal_q) > 1 else np.nan)
            predicted.append(float(v))
            out = act(params, jax.random.fold_in(key, 10_000 * episode + t), ts.observation[None],
                      ts.action_mask[None])
            state, ts = step(state, out.action[0], jax.random.key(0))
            rewards.append(float(ts.reward))
            if bool(ts.terminated) or bool(ts.truncated):
                break
        g, backwards = 0.0, []
        for r in reversed(rewards):
            g = r + gamma * g
            backwards.append(g)
        returns += backwards[::-1]
    predicted, returns = np.array(predicted), np.array(returns)
    print(f"{run}: {episodes} episodes, {len(predicted)} steps; corr(V^, return) "
          f"{np.corrcoef(predicted, returns)[0, 1]:.3f}; mean V^ {predicted.mean():.3f} sd "
          f"{predicted.std():.3f}; mean return {returns.mean():.3f} sd {returns.std():.3f}; "
          f"mean |V^-G| {np.abs(predicted - returns).mean():.3f}; median Q gap among legal "
          f"{np.nanmedian(gaps):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
