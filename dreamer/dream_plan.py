"""The schedule of a dream (`dreamer dream`, and continual learning's dreams between phases):
which learner phases run, which have a whole-replay reanalysis pass before them, and the keys.
Imported by both `dreamer.dream` and `dreamer.train`, so neither imports the other."""

from __future__ import annotations

import dataclasses

from dreamer.errors import UserError

DEFAULT_UPDATES_FACTOR = 2
"""Without --updates or --passes a dream makes this many times the updates the run has made (in
whole phases). tiny catch stopped at 768 real steps, 3 seeds, 100 greedy episodes: mean return
-0.32 trained, -0.10 after 1x, 0.04 after 2x, 0.04 after 3x, 0.01 after 4x; nothing rose past
2x (notebooks/results/dream_catch/). minatar/breakout stopped at 25,088 real steps (12,096
updates, sticky actions 0.1), 100 greedy episodes, seeds 0 / 1: 1.78 / 3.14 trained, 2.11 / 3.18
after 0.4x, 2.37 / 4.93 after 1.7x, 2.82 / 4.04 after 6.8x: both rose up to 1.7x, and past it
seed 0 kept rising while seed 1 fell back (notebooks/results/dream_breakout_25k/)."""

DREAM_KEY_STREAM = 0x445245  # the dream's keys: a stream of their own, apart from training's


class DreamError(UserError, ValueError):
    """A dream that cannot run as asked; the message names the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class DreamPlan:
    """A dream's schedule, phase by phase.

    Attributes:
      updates_per_phase: updates in each phase (one call of the run's learner program).
      pass_before: [phases] whether a whole-buffer reanalysis pass runs before the phase.
      evaluate_after: [phases] whether the dream evaluates and checkpoints after the phase (the
        last phase always).
    """

    updates_per_phase: int
    pass_before: tuple[bool, ...]
    evaluate_after: tuple[bool, ...]

    @property
    def phases(self) -> int:
        return len(self.pass_before)

    @property
    def updates(self) -> int:
        return self.phases * self.updates_per_phase

    @property
    def passes(self) -> int:
        return sum(self.pass_before)


def plan_dream(updates_per_phase: int, target_update_interval: int, start_updates: int,
               updates: int | None = None, passes: int | None = None,
               eval_every: int | None = None) -> DreamPlan:
    """The dream's schedule; give `updates` or `passes`.

    Args:
      updates_per_phase: the run's updates per learner call (`config.updates_per_phase`).
      target_update_interval: updates between target-network refreshes.
      start_updates: the run's learner updates so far (refreshes fall on multiples of the
        interval of this count).
      updates: N updates (a multiple of `updates_per_phase`) in N / updates_per_phase phases; a
        pass runs before the first phase and before each phase after one in which the target
        network refreshed.
      passes: P rounds of one pass followed by R = ceil(interval / updates_per_phase) phases:
        the fewest whole phases that hold a refresh, so each pass after the first searches with
        a new target network. P x R x updates_per_phase updates.
      eval_every: evaluate (and checkpoint) after each phase that completes a multiple of this
        many dreamed updates (a multiple of `updates_per_phase`); the last phase always.

    Raises:
      DreamError: both or neither of updates and passes, or a count that is not positive or not
        a multiple of the phase.
    """
    chunk, interval = updates_per_phase, target_update_interval
    if (updates is None) == (passes is None):
        raise DreamError("give --updates N or --passes P (not both)")
    _check_multiple("--updates", updates, chunk)
    _check_multiple("--eval-every", eval_every, chunk)
    if passes is not None and passes < 1:
        raise DreamError(f"--passes {passes}: must be at least 1")
    if updates is not None:
        phases = updates // chunk
        done = [start_updates + j * chunk for j in range(phases)]
        pass_before = [True] + [done[j] // interval > done[j - 1] // interval
                                for j in range(1, phases)]
    else:
        per_pass = -(-interval // chunk)
        phases = passes * per_pass
        pass_before = [j % per_pass == 0 for j in range(phases)]
    evaluate_after = [j == phases - 1 or (eval_every is not None
                                          and ((j + 1) * chunk) % eval_every == 0)
                      for j in range(phases)]
    return DreamPlan(chunk, tuple(pass_before), tuple(evaluate_after))


def _check_multiple(flag: str, value: int | None, chunk: int) -> None:
    if value is None:
        return
    if value < 1 or value % chunk:
        lower = max(chunk, value // chunk * chunk)
        raise DreamError(f"{flag} {value}: must be a positive multiple of the run's updates per "
                         f"phase, {chunk} (e.g. {lower} or {lower + chunk})")


def default_updates(run_updates: int, updates_per_phase: int) -> int:
    """The updates of a dream given neither --updates nor --passes: DEFAULT_UPDATES_FACTOR x
    the run's updates, in whole phases (at least one)."""
    phases = max(1, -(-DEFAULT_UPDATES_FACTOR * run_updates // updates_per_phase))
    return phases * updates_per_phase


def dream_key(seed: int, updates: int, reanalysis: bool):
    """The key of the learner phase (or, with `reanalysis`, of the pass before it) that starts
    at `updates` learner updates, in the run seeded `seed`."""
    import jax

    base = jax.random.fold_in(jax.random.key(seed), DREAM_KEY_STREAM)
    return jax.random.fold_in(base, 2 * updates + int(reanalysis))
