"""Stop a run mid-way, resume it, and check it ends equal to the run never stopped."""

import jax
import numpy as np


def assert_resume_is_bit_identical(cfg, tmp_path, stop_at: int):
    """Runs `cfg` straight through in `tmp_path/a`, and in `tmp_path/b` stopped once it has
    `stop_at` real steps and resumed: the ledgers' counts, the learner's state and eval.csv must
    be equal. Returns the straight and the resumed Trainer."""
    from dreamer.train import Trainer

    straight = Trainer(cfg, str(tmp_path / "a"))
    expected = straight.run(progress=False).to_json()
    out = str(tmp_path / "b")
    first = Trainer(cfg, out)
    first.run(progress=False, stop_flag=lambda: first.ledger.env_steps >= stop_at)
    assert first.ledger.env_steps < cfg.run.real_steps
    resumed = Trainer(cfg, out, resume=True)
    ledger = resumed.run(progress=False).to_json()
    for key in ("real", "simulated", "updates"):
        assert ledger[key] == expected[key], key
    leaves = lambda t: [np.asarray(x).tobytes() for x in jax.tree.leaves(t.train_state)]  # noqa: E731
    assert leaves(resumed) == leaves(straight)
    assert (tmp_path / "a" / "eval.csv").read_bytes() == (tmp_path / "b" / "eval.csv").read_bytes()
    return straight, resumed
