"""Do the replay's priorities favour the windows that hold a reward? From a run's newest checkpoint
(restored read-only through `Trainer(resume=True, restore_from=RUN)` into a scratch folder): the share
of sampling probability (priority^alpha) on start rows whose window of K unrolled steps holds a reward,
against the share of such rows (uniform sampling). Usage: python prioritydiag.py RUN_DIR"""
import sys, tempfile, numpy as np
from dreamer import agent as agent_lib
from dreamer.train import Trainer
from dreamer.jax_setup import enable_compilation_cache
enable_compilation_cache()
run = sys.argv[1]
cfg = agent_lib.read_config(run)
trainer = Trainer(cfg, tempfile.mkdtemp(), resume=True, restore_from=run)
r = trainer.replay
K = cfg.train.unroll_steps
gi, n = np.asarray(r.global_index), int(r.num_rows)
reward = np.asarray(r.rows.reward)  # [capacity, N]
cap = reward.shape[0]
startable = (gi >= 0) & (gi <= n - 2)
order = np.argsort(gi)  # slots in stream order (the same for every stream)
rew = reward[order]  # [n, N] in time order
hit = np.zeros_like(rew, bool)
for k in range(K):  # the window's rewards r_t .. r_{t+K-1}
    hit[: len(rew) - k] |= rew[k:] > 0
hit_slot = np.zeros_like(hit); hit_slot[order] = hit
score = np.where(startable[:, None], np.asarray(r.priority) ** cfg.replay.alpha, 0.0)
p = score / score.sum()
uniform = hit_slot[startable].mean()
print(f"{run}: {n} rows x {reward.shape[1]} streams; rows paying {np.mean(reward[gi >= 0] > 0):.3%}; windows holding a reward: "
      f"{uniform:.2%} of start rows, {p[hit_slot].sum():.2%} of sampling probability "
      f"({p[hit_slot].sum() / max(uniform, 1e-9):.2f}x)")
