"""Does one frame show a MinAtar world's whole state? Under uniform random play (256 copies x 1,000
steps), group the transitions by (observation, action) and count the groups seen twice or more
whose next observations differ (steps that end an episode or score are left out: Freeway redraws
its cars on a crossing). In a deterministic world (Breakout after its reset, Freeway between
crossings, Space Invaders) a frame that shows the whole state always has one successor per action."""
import collections
import sys

import jax
import numpy as np

import worlds

B, T = 256, 1000


def run(name, history):
    w = worlds.make(name, history=history) if history > 1 else worlds.make(name)
    A = w.spec.num_actions
    step = jax.jit(jax.vmap(w.step))
    state, ts = jax.vmap(w.reset)(jax.random.split(jax.random.key(0), B))
    succ, seen = collections.defaultdict(set), collections.Counter()
    for t in range(T):
        k = jax.random.fold_in(jax.random.key(1), t)
        a = jax.random.randint(k, (B,), 0, A)
        obs = np.asarray(ts.observation).reshape(B, -1)
        state, ts2 = step(state, a, jax.random.split(jax.random.fold_in(k, 1), B))
        nxt = np.asarray(ts2.observation).reshape(B, -1)
        end = np.asarray(ts2.terminated | ts2.truncated) | (np.asarray(ts2.reward) != 0)
        an = np.asarray(a)
        for i in range(B):
            if not end[i]:  # skip ends (auto-reset) and scoring steps (Freeway redraws its cars)
                pair = (obs[i].tobytes(), int(an[i]))
                succ[pair].add(nxt[i].tobytes())
                seen[pair] += 1
        ts = ts2
    twice = [p for p, n in seen.items() if n >= 2]
    return len(twice), np.mean([len(succ[p]) > 1 for p in twice])


# `python markov.py GAME... [--histories 1,3,6]`: the frame counts to test (default 1 and 3).
args, histories = sys.argv[1:], (1, 3)
if "--histories" in args:
    i = args.index("--histories")
    histories = tuple(int(h) for h in args[i + 1].split(","))
    args = args[:i] + args[i + 2:]
for name in args:
    for h in histories:
        n, share = run(f"minatar/{name}", h)
        print(f"{name:15s} history {h}: {n} (observation, action) pairs seen twice or more, {share:.3f} of "
              "them with more than one next observation")
