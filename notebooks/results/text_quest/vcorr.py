"""Episodes with a run's search sampled at T = 1: per step, the value head's prediction V^(o_t)
against the discounted return from t that followed; prints their correlation, means and error,
and the median gap between the best and worst legal action's one-step model Q.

JAX worlds and memoryless agents only. Run from a checkout: python vcorr.py RUN_DIR EPISODES.
"""

import sys

import jax
import numpy as np
from qprobe import load, one_step


def main(run: str, episodes: int) -> None:
    config, world, params, fns, act = load(run, 1.0)
    gamma = config.train.discount
    model_step = one_step(fns, world.spec.num_actions)
    step = jax.jit(world.step)

    key = jax.random.key(7)
    predicted, returns, gaps = [], [], []
    for episode in range(episodes):
        state, ts = world.reset(jax.random.fold_in(key, episode))
        rewards = []
        for t in range(world.spec.max_episode_steps):
            _, v, r_hat, v_after = model_step(params, ts.observation)
            q = np.asarray(r_hat + gamma * v_after)[np.asarray(ts.action_mask)]
            gaps.append(q.max() - q.min() if len(q) > 1 else np.nan)
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
