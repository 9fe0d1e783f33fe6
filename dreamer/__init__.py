"""dreamer: sample-efficient model-based RL in JAX (a learned latent world model, MCTS in imagined
rollouts, and an exact ledger of real versus dreamed samples).

The Python API, beside the `dreamer` command line::

    import dreamer

    config = dreamer.config.override(dreamer.config.tiny(), ["world=catch", "run.real_steps=512"])
    ledger = dreamer.fit(config, "runs/catch-api")     # as `dreamer train`; a SampleLedger
    print(ledger.env_steps, ledger.simulated, ledger.eval_mean_return)

    agent = dreamer.load("runs/catch-api")             # read-only, as `dreamer eval`
    action = agent.act(observation, action_mask=mask)  # one observation, temperature 0
    returns = agent.evaluate(episodes=10)              # = `dreamer eval --episodes 10`

* `dreamer.fit(config, out_dir, resume=False, progress=True)`: trains a run into `out_dir` and
  returns its `SampleLedger` (`dreamer.train.train`: the host loop's module is `dreamer.train`).
* `dreamer.load(run_dir, world=None)`: the run's `Agent` at its newest checkpoint
  (`dreamer.agent.load`); see `Agent.act` and `Agent.evaluate`.
* Submodules (`dreamer.config`, `dreamer.ledger`, ...) are imported when first used.

`import dreamer` itself is cheap: JAX is imported by the first call that needs it, so
`dreamer --help` starts fast.
"""

from __future__ import annotations

import importlib

__all__ = ["fit", "load"]


def fit(config, out_dir: str, resume: bool = False, progress: bool = True):
    """Trains `config` into the run folder `out_dir`, as `dreamer train` does, and returns the
    run's `SampleLedger` (see `dreamer.train.train`)."""
    # resolved by name, as the submodules below are: the package imports none of its modules
    return importlib.import_module("dreamer.train").train(config, out_dir, resume=resume,
                                                          progress=progress)


def __getattr__(name: str):
    """Lazy attributes: `load` and the submodules, imported on first use."""
    if name == "load":
        return importlib.import_module("dreamer.agent").load
    if name.startswith("_"):
        raise AttributeError(f"module 'dreamer' has no attribute {name!r}")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module 'dreamer' has no attribute {name!r}") from None


def __dir__():
    return sorted({*globals(), "load"})
