"""The sample ledger: exactly how many real and how many simulated (dreamed) steps a run used.

* real.env_steps: agent decisions taken in the training worlds (evaluation is not counted);
  real.frames: emulator frames behind them (frame skip, no-op starts); real.episodes: finished.
* simulated.*: latent model transitions (one recurrent application per root), spent in search
  while acting, in search while reanalysing sampled batches (per update), in buffer-wide
  reanalysis passes over the replay (`dream`), and in the training unroll.
* real.by_world (continual runs only, `dreamer train --worlds`): real.env_steps, real.frames and
  real.episodes of each world of the sequence; they add up to the totals. Evaluation on every
  world after each phase is not counted, as no evaluation is.
* dream_ratio = simulated.total / real.env_steps.
* updates: learner updates; dream_updates: those of them made by `dreamer dream`, from stored
  experience alone (no real step). Both are included in the simulated counts above.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

EVAL_COLUMNS = "env_steps,updates,simulated,mean_return,std_return,episodes"
"""The header of a run's eval.csv (`dreamer train`, `dreamer baseline`); a run that dreamed adds
a last column, `dream_updates`."""


@dataclasses.dataclass
class SampleLedger:
    """Host-side counters (exact Python ints), written as `ledger.json`."""

    world: str
    seed: int
    config: dict[str, Any]
    env_steps: int = 0
    frames: int = 0
    episodes: int = 0
    search: int = 0
    reanalyse: int = 0
    dream: int = 0
    unroll: int = 0
    updates: int = 0
    dream_updates: int = 0
    eval_episodes: int = 0
    eval_mean_return: float | None = None
    eval_std_return: float | None = None
    wall_seconds: float = 0.0
    by_world: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    # {world: {"training": options, "evaluation": options}}: the protocol the counts and returns
    # were measured under (`dreamer.train.world_settings`); empty where no trainer set it
    world_settings: dict[str, dict[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)

    def count_world(self, world: str, env_steps: int, frames: int, episodes: int) -> None:
        """Adds a collection's real counts to `world`'s (a continual run's `real.by_world`)."""
        counts = self.by_world.setdefault(world, {"env_steps": 0, "frames": 0, "episodes": 0})
        counts["env_steps"] += env_steps
        counts["frames"] += frames
        counts["episodes"] += episodes

    @property
    def simulated(self) -> int:
        return self.search + self.reanalyse + self.dream + self.unroll

    @property
    def dream_ratio(self) -> float:
        return self.simulated / self.env_steps if self.env_steps else 0.0

    def to_json(self) -> dict[str, Any]:
        real: dict[str, Any] = {"env_steps": self.env_steps, "frames": self.frames,
                                "episodes": self.episodes}
        if self.by_world:  # a single-world ledger stays as it always was
            real["by_world"] = {name: dict(counts) for name, counts in self.by_world.items()}
        return {
            "world": self.world,
            "seed": self.seed,
            "config": self.config,
            "real": real,
            "simulated": {
                "search": self.search,
                "reanalyse": self.reanalyse,
                "dream": self.dream,
                "unroll": self.unroll,
                "total": self.simulated,
            },
            "dream_ratio": self.dream_ratio,
            "updates": self.updates,
            "dream_updates": self.dream_updates,
            "eval": {
                "episodes": self.eval_episodes,
                "mean_return": self.eval_mean_return,
                "std_return": self.eval_std_return,
            },
            "wall_seconds": self.wall_seconds,
            **({"world_settings": self.world_settings} if self.world_settings else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleLedger:
        return cls(
            world=data["world"],
            seed=data["seed"],
            config=data["config"],
            env_steps=data["real"]["env_steps"],
            frames=data["real"]["frames"],
            episodes=data["real"]["episodes"],
            search=data["simulated"]["search"],
            reanalyse=data["simulated"]["reanalyse"],
            dream=data["simulated"].get("dream", 0),  # ledgers written before the pass existed
            unroll=data["simulated"]["unroll"],
            updates=data["updates"],
            dream_updates=data.get("dream_updates", 0),  # ledgers written before `dream`
            eval_episodes=data["eval"]["episodes"],
            eval_mean_return=data["eval"]["mean_return"],
            eval_std_return=data["eval"]["std_return"],
            wall_seconds=data["wall_seconds"],
            by_world={name: dict(counts)
                      for name, counts in data["real"].get("by_world", {}).items()},
            world_settings=data.get("world_settings", {}),  # ledgers written before it
        )

    def eval_row(self) -> str:
        """This ledger's evaluation as an eval.csv row in `EVAL_COLUMNS` (no newline)."""
        return (f"{self.env_steps},{self.updates},{self.simulated},{self.eval_mean_return},"
                f"{self.eval_std_return},{self.eval_episodes}")

    def write(self, directory: str) -> str:
        """Writes `directory/ledger.json` atomically (write then rename)."""
        path = os.path.join(directory, "ledger.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.to_json(), f, indent=2)
        os.replace(tmp, path)
        return path
