"""Greedy episodes of a text/quest agent: per step, the search's policy and, per legal action,
the model's Q (r^ + g V^(dyn)) against the Q from the real next observation (r + g V^(repr(next))).

JAX worlds and memoryless agents only. Run from a checkout: python qprobe.py RUN_DIR [EPISODES].
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
    gamma, names = config.train.discount, world.spec.action_names
    search = make_act(model, config, explore=False)
    act = jax.jit(lambda p, k, o, m: search(p, k, o, m, 0.0))

    @jax.jit
    def probe(p, obs, nexts):
        latent = fns.represent(p, obs[None])
        prior_logits, value_logits = fns.predict(p, latent)
        n = nexts.shape[0]
        after = fns.dynamics(p, jnp.repeat(latent, n, 0), jnp.arange(n))
        prefix, _ = fns.value_prefix(p, after, fns.initial_lstm(n))
        _, after_value = fns.predict(p, after)
        _, real_value = fns.predict(p, fns.represent(p, nexts))
        vs, rs = fns.value_support, fns.reward_support
        return (jax.nn.softmax(prior_logits[0]), categorical_to_scalar(value_logits, vs)[0],
                categorical_to_scalar(prefix, rs), categorical_to_scalar(after_value, vs),
                categorical_to_scalar(real_value, vs))

    key = jax.random.key(1)
    for episode in range(episodes):
        state, ts = world.reset(jax.random.fold_in(key, episode))
        for t in range(world.spec.max_episode_steps):
            legal = np.flatnonzero(np.asarray(ts.action_mask))
            outs = [world.step(state, jnp.int32(a), jax.random.key(0)) for a in range(len(names))]
            nexts = jnp.stack([o[1].observation for o in outs])
            rewards = np.array([float(o[1].reward) for o in outs])
            prior, v, r_hat, v_after, v_real = map(np.asarray, probe(params, ts.observation, nexts))
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
