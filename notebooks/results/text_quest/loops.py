"""How a greedy text/quest agent's lost games end: in a loop over observations it has seen before?

Plays EPISODES games at once, greedy (the evaluation's search without root noise), and for each lost
game counts how often its most repeated observation came back. A memoryless greedy agent that sees an
observation again (the same room, marks and inventory) acts as before, so a lost game whose
observations repeat is a loop. JAX worlds, memoryless or recurrent agents.
Run from a checkout: python loops.py RUN_DIR [EPISODES].
"""

import collections
import sys

import jax
import numpy as np

from dreamer import agent as agent_lib
from dreamer.actor import initial_memory, make_act
from dreamer.networks import agent_input, next_memory


def main(run: str, episodes: int) -> None:
    agent = agent_lib.load(run)
    config, world = agent.config, agent.world  # the run's JAX world, built with its options
    search = make_act(agent.model, config, explore=False)

    @jax.jit
    def step(state, ts, memory, key):
        out = search(agent.params, key, agent_input(ts.observation, memory), ts.action_mask, 0.0)
        state, ts_next = world.step_batch(state, out.action, jax.random.split(key, episodes))
        return state, ts_next, next_memory(out.memory, ts_next.terminated | ts_next.truncated)

    key = jax.random.key(7)
    state, ts = jax.vmap(world.reset)(jax.random.split(key, episodes))
    memory = initial_memory(agent.model, episodes)
    seen = [collections.Counter() for _ in range(episodes)]
    result = np.full(episodes, np.nan)
    for t in range(world.spec.max_episode_steps):
        obs = np.asarray(ts.observation)
        for i in np.flatnonzero(np.isnan(result)):
            seen[i][obs[i].tobytes()] += 1
        state, ts, memory = step(state, ts, memory, jax.random.fold_in(key, t))
        done = np.asarray(ts.terminated | ts.truncated) & np.isnan(result)
        result[done] = np.asarray(ts.reward)[done]
    lost = np.flatnonzero(result < 0.5)
    repeats = np.array([max(seen[i].values()) for i in lost])
    print(f"{run}: won {np.mean(result > 0.5):.3f} of {episodes}; lost {len(lost)}: most repeated "
          f"observation seen >= 3 times in {np.sum(repeats >= 3)}, >= 10 times in "
          f"{np.sum(repeats >= 10)}; median {np.median(repeats) if len(lost) else 0:.0f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
