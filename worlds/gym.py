"""Any installed gymnasium environment with a discrete action set, as `worlds.make("gym:<ID>")`.

N copies run in one process through `gymnasium.vector.SyncVectorEnv` with
`AutoresetMode.SAME_STEP`: the step that ends an episode returns the next episode's first
observation (the finished episode's last one is in gymnasium's `info["final_obs"]`, unused here),
which is this package's auto-reset convention. gymnasium 1.x's default, `NEXT_STEP`, would instead
return the final observation and reset on the following call, so it is not used.

Observations must be a `Box` of rank 1 (`observation_kind="vector"`) or rank 3 (`"image"`, taken as
H, W, C); actions must be `Discrete`. `frames` counts agent steps over all copies.
"""

from __future__ import annotations

import difflib
import pickle

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from worlds.base import HostWorld, TimeStep, WorldSpec
from worlds.errors import UnknownWorldError, WorldError, WorldOptionError

DEFAULT_MAX_EPISODE_STEPS = 100_000
"""Time limit applied to an env whose gymnasium spec sets none."""


class UnsupportedWorldError(WorldError, ValueError):
    """Raised for a gymnasium env whose spaces `dreamer` cannot use."""


def _check_spaces(env_id: str, action_space, observation_space) -> None:
    if not isinstance(action_space, gymnasium.spaces.Discrete):
        raise UnsupportedWorldError(
            f"dreamer plans over a discrete action set; gym:{env_id} has a "
            f"{type(action_space).__name__} action space ({action_space})"
        )
    if not isinstance(observation_space, gymnasium.spaces.Box):
        raise UnsupportedWorldError(
            f"dreamer needs array observations (a Box space); gym:{env_id} has a "
            f"{type(observation_space).__name__} observation space"
        )
    if len(observation_space.shape) not in (1, 3):
        raise UnsupportedWorldError(
            f"dreamer takes vector (rank 1) or image (rank 3, H x W x C) observations; "
            f"gym:{env_id} has observations of shape {observation_space.shape}"
        )


def _make_one(env_id: str, **env_kwargs) -> gymnasium.Env:
    try:
        return gymnasium.make(env_id, **env_kwargs)
    except TypeError as e:  # the env's own constructor refused a keyword
        if env_kwargs and "keyword argument" in str(e):
            raise WorldOptionError(f"world 'gym:{env_id}': {e}") from None
        raise
    except gymnasium.error.UnregisteredEnv:
        close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(f'gym:{c}' for c in close)}?" if close else ""
        if env_id.startswith("ALE/"):
            hint += " For Atari games use 'atari/<game>', e.g. 'atari/pong'."
        raise UnknownWorldError(
            f"unknown gymnasium env {env_id!r} (world 'gym:{env_id}').{hint}"
        ) from None


class GymWorld(HostWorld):
    """N copies of a gymnasium env behind the `HostWorld` interface. Build with `make_gym`."""

    def __init__(self, env_id: str, num_envs: int = 1, **env_kwargs):
        if num_envs < 1:
            raise WorldOptionError(f"gym:{env_id}: num_envs must be >= 1, got {num_envs}")
        probe = _make_one(env_id, **env_kwargs)
        try:
            _check_spaces(env_id, probe.action_space, probe.observation_space)
            if probe.spec is None or probe.spec.max_episode_steps is None:
                env_kwargs = {**env_kwargs, "max_episode_steps": DEFAULT_MAX_EPISODE_STEPS}
                max_episode_steps = DEFAULT_MAX_EPISODE_STEPS
            else:
                max_episode_steps = int(probe.spec.max_episode_steps)
            meanings = getattr(probe.unwrapped, "get_action_meanings", None)
            num_actions = int(probe.action_space.n)
            action_names = (
                tuple(meanings())
                if callable(meanings)
                else tuple(str(a) for a in range(num_actions))
            )
        finally:
            probe.close()

        self.num_envs = num_envs
        self._env = SyncVectorEnv(
            [lambda: gymnasium.make(env_id, **env_kwargs) for _ in range(num_envs)],
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        obs_space = self._env.single_observation_space
        self._action_start = int(self._env.single_action_space.start)
        self._obs_dtype = np.dtype(obs_space.dtype)
        self.spec = WorldSpec(
            name=f"gym:{env_id}",
            observation_shape=tuple(obs_space.shape),
            observation_dtype=self._obs_dtype.name,
            num_actions=num_actions,
            action_names=action_names,
            max_episode_steps=max_episode_steps,
            observation_kind="vector" if len(obs_space.shape) == 1 else "image",
            frames_per_step=1,
        )
        self._action_mask = np.ones((num_envs, num_actions), dtype=bool)
        self.frames = 0

    def reset(self, seed: int) -> TimeStep:
        """Starts a fresh episode in every copy; copy i is seeded with `seed + i`.

        Returns:
          TimeStep with observation [N, *observation_shape], reward [N] float32 zeros,
          flags [N] bool False, action_mask [N, A] all True.
        """
        obs, _ = self._env.reset(seed=int(seed))
        return self._reset_timestep(np.asarray(obs, self._obs_dtype), self._action_mask.copy())

    def step(self, actions: np.ndarray) -> TimeStep:
        """One step in every copy, auto-resetting finished ones.

        Args:
          actions: [N] integer actions in `[0, num_actions)`.

        Returns:
          TimeStep: reward [N] float32 and flags [N] bool of the transition just taken;
          observation [N, *observation_shape] is the next episode's first one where an episode
          ended. `truncated` is False where `terminated` is True.
        """
        actions = self._check_actions(actions)
        obs, reward, terminated, truncated, _ = self._env.step(
            actions.astype(np.int64) + self._action_start
        )
        self.frames += self.num_envs
        terminated = np.asarray(terminated, bool)
        return TimeStep(
            observation=np.asarray(obs, self._obs_dtype),
            reward=np.asarray(reward, np.float32),
            terminated=terminated,
            truncated=np.asarray(truncated, bool) & ~terminated,
            action_mask=self._action_mask.copy(),
        )

    def get_state(self) -> bytes | None:
        """The copies pickled (wrappers, episode progress, RNGs) with `frames`; None when an env
        holds something pickle cannot copy (a window, a handle to a simulator process).

        With `SAME_STEP` auto-reset the vector env keeps no state of its own between steps, so
        the copies are all of it.
        """
        try:
            return pickle.dumps((self._env.envs, self.frames))
        except (pickle.PicklingError, TypeError, AttributeError):
            return None

    def set_state(self, state: bytes) -> None:
        envs, frames = pickle.loads(state)
        if len(envs) != self.num_envs:
            raise ValueError(f"{self.spec.name}: a saved state of {len(envs)} copies does not fit "
                             f"{self.num_envs} copies")
        for env in self._env.envs:
            env.close()
        self._env.envs = list(envs)
        self.frames = int(frames)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


def make_gym(env_id: str, num_envs: int = 1, **env_kwargs) -> GymWorld:
    """Builds `num_envs` copies of the gymnasium env `env_id`.

    Args:
      env_id: a registered gymnasium id, e.g. `"CartPole-v1"`, `"Acrobot-v1"`.
      num_envs: parallel copies (stepped in sequence in this process).
      **env_kwargs: passed to `gymnasium.make` (e.g. `max_episode_steps`).

    Raises:
      UnknownWorldError: for an id gymnasium does not know, with the closest ids.
      UnsupportedWorldError: for a non-`Discrete` action space or a non-`Box` observation space.
    """
    return GymWorld(env_id, num_envs, **env_kwargs)
