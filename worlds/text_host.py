"""The shared base of host text worlds (`twx/...`, `textworld/...`): games outside JAX, shown as
token ids over a family's fixed vocabulary, acted on through a family's fixed command list.

`TextHostWorld` holds what every such world does alike: the option checks, the vocabulary and
command list, the observation and mask buffers, the episode bookkeeping (score, step count, the
commands of the `history` field), the batched `reset`/`step` with auto-reset, `render` and
`close`. A game family writes only how one copy's game is started (`_start_game`), played one
command (`_play`) and released (`_release`), each answering with a `Turn`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np

from worlds.base import HostWorld, TimeStep
from worlds.errors import WorldOptionError
from worlds.text_tokens import Vocabulary, token_world_spec


class Turn(NamedTuple):
    """What one copy's game shows after it starts or after a command.

    Attributes:
      texts: observation field -> text, for every field of the world's `OBSERVATION_FIELDS` but
        `history` (the world keeps the commands itself).
      valid_commands: the commands the game accepts now, in any order.
      score: the game's cumulative score (the reward of a step is its change).
      won: whether the game was won (after a command; False at a start).
      over: whether the episode ended, won, lost or otherwise (False at a start).
    """

    texts: dict[str, str]
    valid_commands: Iterable[str]
    score: float
    won: bool = False
    over: bool = False


def history_text(commands: Iterable[str]) -> str:
    """The `history` field: commands of the episode so far, oldest first, joined by commas."""
    return ", ".join(commands)


def field_texts(texts: dict[str, str], which: Sequence[str], history: Iterable[str] = ()) -> list[str]:
    """The texts of the fields `which`, in order, with `history` as the `history` field's commands."""
    return [history_text(history) if f == "history" else texts[f] for f in which]


class TextHostWorld(HostWorld):
    """N copies of one text game family behind the `HostWorld` interface.

    A subclass starts its games, loads its family file, then calls `__init__`; it implements
    `_start_game(i)` and `_play(i, command)` (both returning a `Turn`) and `_release()`. The
    world steps the copies through `_map`, in sequence unless a subclass sets `_pool` (a thread
    pool) before `__init__`.

    Attributes:
      vocabulary: token id -> word of this world's family (save it with a run).
      commands: action id -> command text (the same as `spec.action_names`).
      family: name of the family file the vocabulary and commands come from.
      max_tokens: length of an observation.
      history_commands: how many past commands the `history` field shows.
      success: [N] bool, whether each copy's last step won its game.
      unlisted_commands: valid commands met while playing that are not in the command list.
    """

    OBSERVATION_FIELDS: tuple[str, ...] = ()
    """The fields a `Turn`'s texts hold, plus `history`; `observation_fields` picks among them."""

    _pool = None  # a concurrent.futures executor, or None to step the copies in sequence
    _closed = False

    @classmethod
    def _check_options(cls, name: str, num_envs: int, max_episode_steps: int,
                       observation_fields: Sequence[str], history_commands: int) -> tuple[str, ...]:
        """Raises WorldOptionError for a bad common option; returns `observation_fields` as a tuple."""
        if num_envs < 1:
            raise WorldOptionError(f"{name}: num_envs must be >= 1, got {num_envs}")
        if max_episode_steps < 1:
            raise WorldOptionError(f"{name}: max_episode_steps must be >= 1, got {max_episode_steps}")
        observation_fields = tuple(observation_fields)
        if not observation_fields or set(observation_fields) - set(cls.OBSERVATION_FIELDS):
            raise WorldOptionError(
                f"{name}: observation_fields must be a non-empty subset of "
                f"{cls.OBSERVATION_FIELDS}, got {observation_fields}"
            )
        if history_commands < 0:
            raise WorldOptionError(
                f"{name}: history_commands must be >= 0, got {history_commands}")
        return observation_fields

    def __init__(self, name: str, num_envs: int, family_name: str, family: dict, *,
                 max_episode_steps: int, max_tokens: int | None,
                 observation_fields: tuple[str, ...], history_commands: int,
                 reward_range: tuple[float, float]):
        """Sets up the vocabulary, command list, spec and per-copy buffers from a family file.

        Args:
          name: the world's name (`spec.name`).
          num_envs: number of copies.
          family_name, family: the family file's name and contents (`vocabulary`, `commands`,
            `max_tokens`).
          max_episode_steps, max_tokens, observation_fields, history_commands: the world's options,
            checked
            by `_check_options`.
          reward_range: (lowest, highest) reward of a step.
        """
        self.num_envs = num_envs
        self.frames = 0
        self.family = family_name
        self.vocabulary: list[str] = list(family["vocabulary"])
        self.commands: list[str] = list(family["commands"])
        self._vocab = Vocabulary(self.vocabulary)
        self._command_ids = {c: i for i, c in enumerate(self.commands)}
        self._fields_shown = observation_fields
        self.history_commands = history_commands
        self.max_tokens, self.spec = token_world_spec(
            name, self.commands, family["max_tokens"], history_commands, observation_fields, max_tokens,
            max_episode_steps, reward_range)
        self.unlisted_commands: set[str] = set()
        self.success = np.zeros((num_envs,), bool)
        self._scores = np.zeros((num_envs,), np.float64)
        self._steps = np.zeros((num_envs,), np.int64)
        self._histories: list[list[str]] = [[] for _ in range(num_envs)]
        self._observation = np.zeros((num_envs, self.max_tokens), np.int32)
        self._mask = np.zeros((num_envs, self.spec.num_actions), bool)
        self._started = False

    # --- what a game family writes ----------------------------------------------------------
    def _start_game(self, i: int) -> Turn:
        """Starts a new game in copy i and returns what it shows."""
        raise NotImplementedError

    def _play(self, i: int, command: str) -> Turn:
        """Sends `command` to copy i's game and returns what it shows."""
        raise NotImplementedError

    def _release(self) -> None:
        """Frees the games' resources (interpreters, a JVM); called once or more by `close`."""

    def _reseed(self, seed: int) -> None:
        """Seeds the draw of the games `reset(seed)` starts (nothing where the game is fixed)."""

    # --- per copy ---------------------------------------------------------------------------
    def _map(self, fn: Callable, items) -> list:
        if self._pool is None:
            return [fn(x) for x in items]
        return list(self._pool.map(fn, items))

    def _show(self, i: int, turn: Turn) -> None:
        shown = self.history_commands
        history = self._histories[i][-shown:] if shown else ()
        self._observation[i] = self._vocab.encode(
            field_texts(turn.texts, self._fields_shown, history), self.max_tokens
        )
        self._mask[i] = False
        for command in turn.valid_commands:
            index = self._command_ids.get(command)
            if index is None:
                self.unlisted_commands.add(command)
            else:
                self._mask[i, index] = True
        # Cannot happen with the games tried ("look" is always valid); keep acting if it does.
        if not self._mask[i].any():
            self._mask[i] = True

    def _new_episode(self, i: int) -> None:
        turn = self._start_game(i)
        self._scores[i] = turn.score
        self._steps[i] = 0
        self._histories[i] = []
        self._show(i, turn)

    def _step_copy(self, copy_and_action: tuple[int, int]) -> tuple[float, bool, bool]:
        """Steps copy i; returns (reward, terminated, truncated), starting its next game if done."""
        i, action = copy_and_action
        command = self.commands[action]
        turn = self._play(i, command)
        self._histories[i].append(command)
        reward = turn.score - self._scores[i]
        self._scores[i] = turn.score
        self._steps[i] += 1
        self.success[i] = turn.won
        terminated = turn.over
        truncated = not terminated and bool(self._steps[i] >= self.spec.max_episode_steps)
        if terminated or truncated:
            self._new_episode(i)
        else:
            self._show(i, turn)
        return reward, terminated, truncated

    # --- the interface ----------------------------------------------------------------------
    def reset(self, seed: int) -> TimeStep:
        """Starts a fresh episode in every copy (how `seed` is used: see the subclass).

        Returns:
          TimeStep with observation [N, max_tokens] int32, reward [N] float32 zeros, flags [N]
          bool False, action_mask [N, num_actions] bool (the valid commands).
        """
        self._check_open()
        self._reseed(seed)
        self._map(self._new_episode, range(self.num_envs))
        self.success[:] = False
        self._started = True
        return self._reset_timestep(self._observation.copy(), self._mask.copy())

    def step(self, actions: np.ndarray) -> TimeStep:
        """One command in every copy, auto-resetting finished ones.

        Args:
          actions: [N] integer command ids in `[0, num_actions)`.

        Returns:
          TimeStep: reward [N] float32 (change of the game's score) and flags [N] bool of the
          command just taken; observation [N, max_tokens] and action_mask [N, num_actions] are
          the next episode's first ones where an episode ended. `truncated` is False where
          `terminated`.
        """
        self._check_open()
        if not self._started:
            raise RuntimeError(f"{self.spec.name}: call reset(seed) before step")
        actions = self._check_actions(actions)
        bad = (actions < 0) | (actions >= self.spec.num_actions)
        if bad.any():  # checked before any copy steps, so a refused batch changes nothing
            raise ValueError(
                f"{self.spec.name}: action {actions[bad][0]} out of range "
                f"[0, {self.spec.num_actions})"
            )
        ends = self._map(self._step_copy, enumerate(actions.tolist()))
        self.frames += self.num_envs
        return TimeStep(
            observation=self._observation.copy(),
            reward=np.array([e[0] for e in ends], np.float32),
            terminated=np.array([e[1] for e in ends], bool),
            truncated=np.array([e[2] for e in ends], bool),
            action_mask=self._mask.copy(),
        )

    def render(self, observation) -> str:
        """Token ids [max_tokens] -> readable text (fields separated by `|`)."""
        return self._vocab.decode(observation)

    def close(self) -> None:
        """Frees the games; the world cannot step afterwards. Closing twice is fine."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
        self._release()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.spec.name}: the world is closed")
