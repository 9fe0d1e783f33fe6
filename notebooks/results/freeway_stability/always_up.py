"""Freeway's trivial policy, "up" at every step: the mean and spread of its return over 256 whole
episodes (2,500 steps each) from reset key 0. Usage: python always_up.py"""
import jax
import jax.numpy as jnp
import numpy as np

import worlds

world = worlds.make("minatar/freeway")
B = 256
step = jax.vmap(world.step)


@jax.jit
def episodes(key):
    state, _ = jax.vmap(world.reset)(jax.random.split(key, B))

    def body(carry, t):
        state, ret, done = carry
        state, ts = step(state, jnp.ones(B, jnp.int32), jax.random.split(jax.random.fold_in(key, t), B))
        return (state, ret + ts.reward * ~done, done | ts.terminated | ts.truncated), None

    (_, ret, done), _ = jax.lax.scan(body, (state, jnp.zeros(B), jnp.zeros(B, bool)), jnp.arange(2600))
    return ret, done


ret, done = map(np.asarray, episodes(jax.random.key(0)))
assert done.all()
print(f"always up, {B} episodes: {ret.mean():.2f} +- {ret.std():.2f} (std), "
      f"{(ret == 0).mean():.3f} of them score 0; percentiles 0/10/25/50/75/90/100: "
      f"{np.percentile(ret, [0, 10, 25, 50, 75, 90, 100]).tolist()}")
