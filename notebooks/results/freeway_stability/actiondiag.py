"""Which actions does a run's replay hold? From its newest checkpoint (restored read-only through
`Trainer(resume=True, restore_from=RUN)` into a scratch folder): the share of each action among the
stored rows, over the whole replay and over its newest 10%. Usage: python actiondiag.py RUN_DIR"""
import sys
import tempfile

import numpy as np

from dreamer import agent as agent_lib
from dreamer.jax_setup import enable_compilation_cache
from dreamer.train import Trainer

enable_compilation_cache()
run = sys.argv[1]
cfg = agent_lib.read_config(run)
trainer = Trainer(cfg, tempfile.mkdtemp(), resume=True, restore_from=run)
r = trainer.replay
gi, n = np.asarray(r.global_index), int(r.num_rows)
action = np.asarray(r.rows.action)  # [capacity, N]
stored = gi >= 0
A = trainer.world.spec.num_actions
names = getattr(trainer.world.spec, "action_names", None) or tuple(range(A))
whole = np.bincount(action[stored].ravel(), minlength=A) / action[stored].size
newest = stored & (gi >= n - n // 10)
recent = np.bincount(action[newest].ravel(), minlength=A) / action[newest].size
print(f"{run}: {n} rows x {action.shape[1]} streams")
print("  whole replay: " + ", ".join(f"{a} {s:.3f}" for a, s in zip(names, whole, strict=True)))
print("  newest 10%:   " + ", ".join(f"{a} {s:.3f}" for a, s in zip(names, recent, strict=True)))
