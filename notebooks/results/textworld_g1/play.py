"""First episodes of a textworld game, N copies, by random valid commands or by a run's greedy agent.
Usage: python play.py GAME.z8 N [RUN_DIR]  (no RUN_DIR: uniform random valid commands, numpy seed 0)
Prints the return, the share of episodes won and the episode lengths (steps to the end)."""
import sys

import jax
import numpy as np

import dreamer
import worlds

path, n = sys.argv[1], int(sys.argv[2])
agent = dreamer.load(sys.argv[3]) if len(sys.argv) > 3 else None
world = worlds.make(f"textworld/{path}", num_envs=n)
rng = np.random.default_rng(0)
ts = world.reset(0)
length, ret, done, won = np.zeros(n), np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
t = 0
while not done.all():
    obs, mask = np.asarray(ts.observation), np.asarray(ts.action_mask)
    if agent is None:
        action = np.array([rng.choice(np.flatnonzero(m)) for m in mask])
    else:
        action = np.array([agent.act(obs[i], key=jax.random.key(t * n + i), action_mask=mask[i])
                           for i in range(n)])
    ts = world.step(action)
    end = np.asarray(ts.terminated) | np.asarray(ts.truncated)
    ret += np.asarray(ts.reward) * ~done
    won |= ~done & end & np.asarray(world.success)
    length += ~done
    done |= end
    t += 1
who = "random valid commands" if agent is None else f"{sys.argv[3]} at {agent.ledger.env_steps} real steps"
print(f"{who}, {n} first episodes: return {ret.mean():.3f}, won {won.mean():.3f}, length mean "
      f"{length.mean():.1f}, median {np.median(length):.0f}, min {length.min():.0f}, max {length.max():.0f}")
world.close()
