"""Random play on minatar/asterix: 1,000 episodes of uniform random actions, seed 0 (`python random_asterix.py`)."""
import jax, jax.numpy as jnp, numpy as np
import worlds
w = worlds.make("minatar/asterix")
def episode(key):
    k0, key = jax.random.split(key)
    state, ts = w.reset(k0)
    def body(c):
        state, ts, key, ret, done, t = c
        key, ka, ks = jax.random.split(key, 3)
        a = jax.random.randint(ka, (), 0, w.spec.num_actions)
        state, ts2 = w.step(state, a, ks)
        ret = ret + jnp.where(done, 0.0, ts2.reward)
        done = done | ts2.terminated | ts2.truncated
        return state, ts2, key, ret, done, t + 1
    out = jax.lax.while_loop(lambda c: (~c[4]) & (c[5] < 10000), body, (state, ts, key, 0.0, False, 0))
    return out[3], out[5]
r, t = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(0), 1000))
print("random asterix: mean return", float(r.mean()), "+-", float(r.std() / np.sqrt(1000)), "mean length", float(t.mean()))
