"""MinAtar (Young & Tian, 2019): five 10x10 miniatures of Atari games as JAX worlds.

Each world follows the reference `minatar` package's rules with sticky actions off: observations are
its (10, 10, C) channels as float32, actions are the game's minimal action set.

* Breakout, Freeway and Space Invaders wrap gymnax's ports (their `reset_env` / `step_env`; our base
  adds the time limit and auto-reset, never gymnax's own `step`).
* Asterix wraps gymnax's movement and collision rules but spawns and ramps by the reference's rules:
  a uniformly random free row, nothing when all rows are taken. (gymnax 1.0's spawn never picks one of
  the free rows and, when that row is the only free one or none is, overwrites a live entity.)
* Seaquest is `worlds.minatar_seaquest`: gymnax's port does not speed up under `vmap`.

Episodes end as in the reference (Freeway after 2500 + 1 steps, as `terminated`); `max_episode_steps`
is the only truncation. gymnax is imported by the factories only: importing it takes seconds.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from worlds import minatar_seaquest
from worlds.base import JaxWorld, WorldSpec

DEFAULT_MAX_EPISODE_STEPS = 10_000
FULL_ACTION_NAMES = ("noop", "left", "up", "right", "down", "fire")
FREEWAY_TIME_LIMIT = 2500
_NO_GYMNAX_LIMIT = 2**30  # gymnax's own `max_steps_in_episode`, so that it never ends an episode


@dataclasses.dataclass(frozen=True)
class MinAtarGame:
    """What a MinAtar game shows the agent.

    Attributes:
      minimal_actions: the game's actions as indices into MinAtar's full set `FULL_ACTION_NAMES`.
      channels: names of the observation channels, in order (the reference's `channels` keys).
      reward_range: (lowest, highest) reward of one step.
    """

    minimal_actions: tuple[int, ...]
    channels: tuple[str, ...]
    reward_range: tuple[float, float]

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(FULL_ACTION_NAMES[a] for a in self.minimal_actions)


GAMES = {
    "asterix": MinAtarGame((0, 1, 2, 3, 4), ("player", "enemy", "trail", "gold"), (0.0, 1.0)),
    "breakout": MinAtarGame((0, 1, 3), ("paddle", "ball", "trail", "brick"), (0.0, 1.0)),
    "freeway": MinAtarGame(
        (0, 2, 4),
        ("chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5"),
        (0.0, 1.0),
    ),
    # Up to 2 friendly bullets hit at once, and surfacing with 6 divers pays up to 10.
    "seaquest": MinAtarGame(
(0, 1, 2, 3, 4, 5), minatar_seaquest.CHANNELS, (0.0, 12.0)
    ),
    # Up to 2 friendly bullets are in flight, each kills at most one alien.
    "space_invaders": MinAtarGame(
        (0, 1, 3, 5),
        ("cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet"),
        (0.0, 2.0),
    ),
}


def _spec(game: str, max_episode_steps: int) -> WorldSpec:
    if max_episode_steps < 1:
        raise ValueError(f"minatar/{game}: max_episode_steps must be >= 1, got {max_episode_steps}")
    info = GAMES[game]
    return WorldSpec(
        name=f"minatar/{game}",
        observation_shape=(10, 10, len(info.channels)),
        observation_dtype="float32",
        num_actions=len(info.minimal_actions),
        action_names=info.action_names,
        max_episode_steps=max_episode_steps,
        observation_kind="image",
        reward_range=info.reward_range,
    )


def _strong(tree):
    """Casts every leaf to a strong int32 / float32 / bool.

    gymnax builds some state leaves from Python scalars, which trace as weak-typed; its step returns
    them strong. Without this cast the state's type changes after the first step and a jitted step
    compiles twice.
    """

    def cast(leaf):
        leaf = jnp.asarray(leaf)
        if leaf.dtype == jnp.bool_:
            return leaf.astype(jnp.bool_)
        if jnp.issubdtype(leaf.dtype, jnp.integer):
            return leaf.astype(jnp.int32)
        return leaf.astype(jnp.float32)

    return jax.tree.map(cast, tree)


class GymnaxMinAtar(JaxWorld):
    """A MinAtar game from gymnax: `reset_env` / `step_env` with default parameters.

    The game state is gymnax's `EnvState` (strongly typed). Actions index the minimal action set, as
    gymnax's own `action_set` does.
    """

    def __init__(self, game: str, env, params, max_episode_steps: int):
        self.game = game
        self.spec = _spec(game, max_episode_steps)
        self._env = env
        self._params = params.replace(max_steps_in_episode=_NO_GYMNAX_LIMIT)

    def _reset(self, key):
        obs, state = self._env.reset_env(key, self._params)
        return _strong(state), obs

    def _step(self, game, action, key):
        obs, state, reward, terminated, _ = self._env.step_env(key, game, action, self._params)
        return _strong(state), obs, reward, terminated

    def observe(self, game) -> jax.Array:
        """[10, 10, C] float32 observation of a game state."""
        return self._env.get_obs(game)


class Freeway(GymnaxMinAtar):
    """Freeway: the reference game ends (terminal) on its 2501st step; gymnax leaves that to a limit."""

    def _step(self, game, action, key):
        state, obs, reward, _ = super()._step(game, action, key)
        return state, obs, reward, state.time > FREEWAY_TIME_LIMIT


class SpaceInvaders(GymnaxMinAtar):
    """Space Invaders, with the reference's `difficulty_ramping` switch."""

    def __init__(self, env, params, max_episode_steps: int, ramping: bool):
        super().__init__("space_invaders", env, params, max_episode_steps)
        self.ramping = ramping

    def _reset(self, key):
        state, obs = super()._reset(key)
        return state.replace(ramping=jnp.asarray(self.ramping)), obs


class Asterix(GymnaxMinAtar):
    """Asterix: gymnax's rules for the player and entities, the reference's spawn and ramp rules."""

    def __init__(self, env, params, rules, max_episode_steps: int, ramping: bool):
        super().__init__("asterix", env, params.replace(ramping=ramping), max_episode_steps)
        self._rules = rules  # the module gymnax.environments.minatar.asterix

    def _step(self, game, action, key):
        return self.transition(game, action, jax.random.uniform(key, (ASTERIX_NUM_DRAWS,)))

    def transition(self, game, action, draws):
        """One step given its randomness, `draws` ([ASTERIX_NUM_DRAWS] uniforms, see `asterix_spawn`).

        Returns:
          (game state, observation, reward, terminated) as `_step`.
        """
        spawn_now = game.spawn_timer == 0
        state = game.replace(
            entities=jnp.where(spawn_now, asterix_spawn(game.entities, draws), game.entities),
            spawn_timer=jnp.where(spawn_now, game.spawn_speed, game.spawn_timer),
        )
        state = self._rules.step_agent(state, self._env.action_set[action])
        state, reward, terminated = self._rules.step_entities(state)
        state = asterix_timers(state, self._params)
        state = state.replace(time=state.time + 1, terminal=terminated)
        return _strong(state), self._env.get_obs(state), reward.astype(jnp.float32), terminated


ASTERIX_NUM_DRAWS = 10


def asterix_timers(state, params):
    """The reference Asterix timers and difficulty ramp (end of `act`) on gymnax's `EnvState`.

    gymnax's own version lowers the move interval from 1 to 0 in states whose spawn interval is still
    above 1; the reference stops at 1.
    """
    ramp = params.ramping & ((state.spawn_speed > 1) | (state.move_speed > 1))
    counting = ramp & (state.ramp_timer >= 0)
    level_up = ramp & ~counting
    faster_moves = level_up & (state.move_speed > 1) & (state.ramp_index % 2 == 1)
    return state.replace(
        spawn_timer=state.spawn_timer - 1,
        move_timer=state.move_timer - 1,
        ramp_timer=jnp.where(
            counting,
            state.ramp_timer - 1,
            jnp.where(level_up, params.ramp_interval, state.ramp_timer),
        ),
        move_speed=state.move_speed - faster_moves,
        spawn_speed=state.spawn_speed - (level_up & (state.spawn_speed > 1)),
        ramp_index=state.ramp_index + level_up,
    )


def asterix_spawn(entities: jax.Array, draws: jax.Array) -> jax.Array:
    """The reference Asterix spawn: an enemy (gold with p=1/3) entering a random free row.

    Args:
      entities: [8, 5] int32 gymnax rows (x, y = row + 1, moving right, gold, alive), one per row.
      draws: [ASTERIX_NUM_DRAWS] uniforms in [0, 1): side (< 0.5: enters left, moving right), gold
        (< 1/3), then one score per row; the free row with the highest score is taken.

    Returns:
      [8, 5] int32 entities with the new one written, unchanged when no row is free.
    """
    right, gold = draws[0] < 0.5, draws[1] < 1.0 / 3.0
    free = entities[:, 4] == 0
    row = jnp.argmax(jnp.where(free, draws[2:], -1.0))  # uniform among the free rows
    entity = jnp.stack([jnp.where(right, 0, 9), row + 1, right, gold, 1]).astype(entities.dtype)
    write = (jnp.arange(entities.shape[0]) == row) & jnp.any(free)
    return jnp.where(write[:, None], entity[None, :], entities)


class Seaquest(JaxWorld):
    """Seaquest on `worlds.minatar_seaquest` (state: `SeaquestState`), all six actions."""

    def __init__(self, max_episode_steps: int, ramping: bool):
        self.game = "seaquest"
        self.spec = _spec("seaquest", max_episode_steps)
        self.ramping = ramping

    def _reset(self, key):
        del key  # the reference start state is fixed
        state = minatar_seaquest.reset()
        return state, minatar_seaquest.observe(state)

    def _step(self, game, action, key):
        draws = jax.random.uniform(key, (minatar_seaquest.NUM_DRAWS,))
        return self.transition(game, action, draws)

    def transition(self, game, action, draws):
        """One step given its randomness (`minatar_seaquest.step`'s `draws`).

        Returns:
          (game state, observation, reward, terminated) as `_step`.
        """
        state, reward, terminated = minatar_seaquest.step(game, action, draws, self.ramping)
        return state, minatar_seaquest.observe(state), reward.astype(jnp.float32), terminated

    def observe(self, game) -> jax.Array:
        """[10, 10, 10] float32 observation of a game state."""
        return minatar_seaquest.observe(game)


def make_asterix(
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, ramping: bool = True
) -> Asterix:
    """MinAtar Asterix: dodge enemies, collect gold (+1). Actions: noop, left, up, right, down."""
    from gymnax.environments.minatar import asterix

    env = asterix.MinAsterix()
    return Asterix(env, env.default_params, asterix, max_episode_steps, ramping)


def make_breakout(max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS) -> GymnaxMinAtar:
    """MinAtar Breakout: +1 per brick, ends when the ball passes the paddle. Actions: noop, left, right."""
    from gymnax.environments.minatar.breakout import MinBreakout

    env = MinBreakout()
    return GymnaxMinAtar("breakout", env, env.default_params, max_episode_steps)


def make_freeway(max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS) -> Freeway:
    """MinAtar Freeway: +1 per crossing, ends after 2501 steps. Actions: noop, up, down."""
    from gymnax.environments.minatar.freeway import MinFreeway

    env = MinFreeway()
    return Freeway("freeway", env, env.default_params, max_episode_steps)


def make_seaquest(
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, ramping: bool = True
) -> Seaquest:
    """MinAtar Seaquest: shoot enemies (+1), rescue divers, surface for air. All six actions."""
    return Seaquest(max_episode_steps, ramping)


def make_space_invaders(
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, ramping: bool = True
) -> SpaceInvaders:
    """MinAtar Space Invaders: +1 per alien shot. Actions: noop, left, right, fire."""
    from gymnax.environments.minatar.space_invaders import MinSpaceInvaders

    env = MinSpaceInvaders()
    return SpaceInvaders(env, env.default_params, max_episode_steps, ramping)
