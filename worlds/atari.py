"""Atari 2600 games through ale-py's own vector environment, with the Atari 100k protocol built in.

`make_atari("pong", num_envs=8)` runs 8 copies of Pong in ALE's C++ vector interface (threads, no
Python per copy) with the preprocessing of the Atari 100k papers (SimPLe, DER, SPR, EfficientZero):

* frame skip 4 with a max-pool over the last two raw frames of each agent step;
* grayscale frames resized to `screen_size` x `screen_size` (96 by default; 84 also common);
* the last `stack_num` (4) frames stacked as channels;
* a random number of no-op frames, at most `noop_max` (30), at the start of each episode;
* sticky actions off (`repeat_action_probability=0.0`), the minimal action set;
* episodes truncated after `max_episode_steps` agent steps (27,000 = 108,000 frames).

Two options belong to training copies only and default off here; the trainer turns them on for the
copies it learns from and leaves them off for evaluation:

* `terminal_on_life_loss`: a lost life ends the "episode" (`terminated=True`) but the game goes on;
  the observation returned with that step starts the next life (ALE refills the frame stack with
  the last frame). Returns measured on such copies are per life, not per game.
* `reward_clip`: rewards are sign-clipped to {-1, 0, +1}.

Observations are uint8 `[num_envs, H, W, stack_num]` (channels last; ALE itself gives
`[num_envs, stack_num, H, W]` and this module transposes). `frames` counts every emulator frame
consumed, read from ALE's own frame counters: agent steps x frame skip, plus the no-op frames at
the start of each game (a life loss under `terminal_on_life_loss` adds none). The time limit
counts agent steps of the whole game, across lives.

ale-py is imported when a world is made, so `import worlds.atari` (for `ATARI_100K_GAMES`) is cheap.
"""

from __future__ import annotations

import difflib
import inspect

import numpy as np

from worlds.base import HostWorld, TimeStep, WorldSpec
from worlds.errors import UnknownWorldError, WorldOptionError, check_options

ATARI_100K_GAMES: tuple[str, ...] = (
    "alien",
    "amidar",
    "assault",
    "asterix",
    "bank_heist",
    "battle_zone",
    "boxing",
    "breakout",
    "chopper_command",
    "crazy_climber",
    "demon_attack",
    "freeway",
    "frostbite",
    "gopher",
    "hero",
    "jamesbond",
    "kangaroo",
    "krull",
    "kung_fu_master",
    "ms_pacman",
    "pong",
    "private_eye",
    "qbert",
    "road_runner",
    "seaquest",
    "up_n_down",
)
"""The 26 games of the Atari 100k benchmark (Kaiser et al., 2020), as ALE ROM ids."""


class AtariWorld(HostWorld):
    """N copies of one Atari game behind the `HostWorld` interface.

    Build it with `make_atari` (or `worlds.make("atari/<game>")`), which documents the options.
    """

    def __init__(
        self,
        game: str,
        num_envs: int = 1,
        *,
        frame_skip: int = 4,
        max_pool: bool = True,
        grayscale: bool = True,
        screen_size: int = 96,
        stack_num: int = 4,
        noop_max: int = 30,
        repeat_action_probability: float = 0.0,
        max_episode_steps: int = 27_000,
        terminal_on_life_loss: bool = False,
        reward_clip: bool = False,
        fire_reset: bool = False,
        num_threads: int = 0,
    ):
        from ale_py.vector_env import AtariVectorEnv
        from gymnasium.vector import AutoresetMode

        if num_envs < 1:
            raise WorldOptionError(f"atari/{game}: num_envs must be >= 1, got {num_envs}")
        if max_episode_steps < 1:
            raise WorldOptionError(f"atari/{game}: max_episode_steps must be >= 1")
        self.num_envs = num_envs
        self.reward_clip = reward_clip
        self._env = AtariVectorEnv(
            game,
            num_envs,
            num_threads=num_threads,
            # ALE truncates once the agent steps of an episode times the frame skip reach this.
            max_num_frames_per_episode=max_episode_steps * frame_skip,
            repeat_action_probability=repeat_action_probability,
            full_action_space=False,
            # SAME_STEP: the step that ends an episode returns the next episode's first
            # observation, which is this package's auto-reset convention.
            autoreset_mode=AutoresetMode.SAME_STEP,
            img_height=screen_size,
            img_width=screen_size,
            grayscale=grayscale,
            stack_num=stack_num,
            frameskip=frame_skip,
            maxpool=max_pool,
            noop_max=noop_max,
            # `episodic_life` in ALE restarts the whole game on a life loss; `life_loss_info`
            # signals termination and lets the game go on, as the 100k protocol means it.
            episodic_life=False,
            life_loss_info=terminal_on_life_loss,
            reward_clipping=False,  # clipped here, so the option is visible and testable
            use_fire_reset=fire_reset,
        )
        action_set = self._env.ale.get_action_set()
        num_actions = len(action_set)
        channels = stack_num if grayscale else 3 * stack_num
        self.spec = WorldSpec(
            name=f"atari/{game}",
            observation_shape=(screen_size, screen_size, channels),
            observation_dtype="uint8",
            num_actions=num_actions,
            action_names=tuple(a.name for a in action_set),
            max_episode_steps=max_episode_steps,
            observation_kind="image",
            frames_per_step=frame_skip,
            reward_range=(-1.0, 1.0) if reward_clip else (-float("inf"), float("inf")),
        )
        self._action_mask = np.ones((num_envs, num_actions), dtype=bool)
        # ALE counts frames per copy since that copy's last explicit reset; frames from before an
        # explicit `reset` are banked here.
        self._banked_frames = 0
        self._frame_numbers = np.zeros((num_envs,), dtype=np.int64)

    @property
    def frames(self) -> int:
        """Emulator frames consumed by all copies: agent steps x frame skip, plus no-op frames."""
        return self._banked_frames + int(self._frame_numbers.sum())

    def _to_hwc(self, obs: np.ndarray) -> np.ndarray:
        # [N, S, H, W] -> [N, H, W, S]; RGB [N, S, H, W, 3] -> [N, H, W, S * 3].
        if obs.ndim == 4:
            return np.ascontiguousarray(obs.transpose(0, 2, 3, 1))
        n, s, h, w, c = obs.shape
        return np.ascontiguousarray(obs.transpose(0, 2, 3, 1, 4)).reshape(n, h, w, s * c)

    def reset(self, seed: int) -> TimeStep:
        """Starts a fresh episode in every copy; copy i is seeded with `seed + i`.

        Returns:
          TimeStep with observation [N, H, W, stack] uint8, reward [N] float32 zeros, flags [N]
          bool False, action_mask [N, A] all True.
        """
        self._banked_frames = self.frames
        obs, info = self._env.reset(seed=int(seed))
        self._frame_numbers = info["frame_number"].astype(np.int64)
        return self._reset_timestep(self._to_hwc(obs), self._action_mask.copy())

    def step(self, actions: np.ndarray) -> TimeStep:
        """One agent step (`frame_skip` frames) in every copy, auto-resetting finished ones.

        Args:
          actions: [N] integer actions in `[0, num_actions)`.

        Returns:
          TimeStep: reward [N] float32 and flags [N] bool of the transition just taken;
          observation [N, H, W, stack] uint8 is the next episode's first one where an episode
          ended. `truncated` is False where `terminated` is True.
        """
        actions = self._check_actions(actions)
        obs, reward, terminated, truncated, info = self._env.step(actions.astype(np.int32))
        self._frame_numbers = info["frame_number"].astype(np.int64)
        reward = reward.astype(np.float32)
        if self.reward_clip:
            reward = np.sign(reward)
        terminated = terminated.astype(bool)
        return TimeStep(
            observation=self._to_hwc(obs),
            reward=reward,
            terminated=terminated,
            truncated=truncated.astype(bool) & ~terminated,
            action_mask=self._action_mask.copy(),
        )

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


def make_atari(game: str, num_envs: int = 1, **options) -> AtariWorld:
    """Builds `num_envs` copies of an Atari game with the Atari 100k preprocessing.

    Args:
      game: ALE ROM id in snake_case, e.g. `"pong"`, `"ms_pacman"` (see `ATARI_100K_GAMES`).
      num_envs: parallel copies.
      **options: `frame_skip` (4), `max_pool` (True), `grayscale` (True), `screen_size` (96),
        `stack_num` (4), `noop_max` (30), `repeat_action_probability` (0.0),
        `max_episode_steps` (27000 agent steps), `terminal_on_life_loss` (False; training only),
        `reward_clip` (False; training only), `fire_reset` (False: no FIRE pressed at reset),
        `num_threads` (0: ALE's choice).

    Returns:
      An `AtariWorld` whose observations are uint8 [num_envs, screen_size, screen_size, stack_num].

    Raises:
      UnknownWorldError: for a game ALE does not have, naming the closest ones.
    """
    from ale_py import roms

    known = roms.get_all_rom_ids()
    if game not in known:
        close = difflib.get_close_matches(game, known, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(f'atari/{c}' for c in close)}?" if close else ""
        raise UnknownWorldError(
            f"unknown Atari game {game!r} (world 'atari/{game}').{hint} Games are ALE ROM ids in "
            f"snake_case; the Atari 100k set is: {', '.join(ATARI_100K_GAMES)}."
        )
    check_options(f"atari/{game}", AtariWorld, options, positional=2)
    return AtariWorld(game, num_envs, **options)


# The options `make_atari` takes are `AtariWorld`'s: declared, so that the registry checks them
# and fills in their defaults (`worlds.settings`) without building a world.
make_atari.__signature__ = inspect.signature(AtariWorld)
