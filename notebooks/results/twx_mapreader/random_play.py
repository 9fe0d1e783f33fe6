"""Uniform random valid commands on a host world's evaluation games, the games `dreamer eval` plays.

Usage: python random_play.py WORLD EPISODES [SEED]   e.g. `python random_play.py twx/mapreader 300`

The world is built as `dreamer eval` builds it for a run of seed SEED (0 by default):
`worlds.make(WORLD, num_envs=EPISODES, evaluation=True)` (for TextWorldExpress, the test fold) and
reset with the evaluation's seed, SEED + 1,000,003 (`dreamer.collect.evaluate_policy`). Each copy plays
its first episode; commands are drawn uniformly from the valid ones (numpy, seeded with SEED). Prints
the mean return and its standard deviation, the share of episodes won and the episode lengths."""
import sys

import numpy as np

import worlds

world_name, n = sys.argv[1], int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
world = worlds.make(world_name, num_envs=n, evaluation=True)
rng = np.random.default_rng(seed)
ts = world.reset(seed + 1_000_003)
length, ret = np.zeros(n), np.zeros(n)
done, won = np.zeros(n, bool), np.zeros(n, bool)
while not done.all():
    mask = np.asarray(ts.action_mask)
    action = np.array([rng.choice(np.flatnonzero(m)) for m in mask])
    ts = world.step(action)
    end = np.asarray(ts.terminated) | np.asarray(ts.truncated)
    ret += np.asarray(ts.reward) * ~done
    won |= ~done & end & np.asarray(world.success)
    length += ~done
    done |= end
print(f"{world_name}, random valid commands, {n} evaluation games (seed {seed}): return "
      f"{ret.mean():.3f} +- {ret.std():.3f}, won {won.mean():.3f}, length mean {length.mean():.1f}, "
      f"median {np.median(length):.0f}")
world.close()
