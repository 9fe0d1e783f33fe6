"""Uniform random valid commands on a host world's evaluation games, played as `dreamer eval` plays them.

Usage: python random_play.py WORLD EPISODES [SEED]   e.g. `python random_play.py twx/mapreader 300`

The world and the loop are `dreamer eval`'s for a run of seed SEED (0 by default): `dreamer.collect.make_eval_world`
(for TextWorldExpress, the test fold) and `dreamer.actor.host_evaluate` from the evaluation's seed, SEED +
1,000,003, with a policy that draws each command uniformly from the valid ones (JAX key SEED). Prints the mean
return of the first episodes and its standard deviation."""
import sys
from types import SimpleNamespace

import jax
import jax.numpy as jnp

from dreamer import actor
from dreamer import config as config_lib
from dreamer.collect import make_eval_world

world_name, n = sys.argv[1], int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
config = config_lib.override(config_lib.preset(config_lib.default_preset(world_name)),
                             [f"world={world_name}", f"seed={seed}"])


@jax.jit
def uniform_valid(key, action_mask):
    return jax.random.categorical(key, jnp.where(action_mask, 0.0, -jnp.inf))


def act(params, key, observation, action_mask, temperature):
    return SimpleNamespace(action=uniform_valid(key, action_mask), memory=None)


world = make_eval_world(config, n)
returns = actor.host_evaluate(world, act, None, jax.random.key(seed), n, seed=seed + 1_000_003)
world.close()
print(f"{world_name}, random valid commands, {n} evaluation games (seed {seed}): return "
      f"{returns.mean():.3f} +- {returns.std():.3f}")
