"""MinAtar (Young & Tian, 2019): five 10x10 miniatures of Atari games as JAX worlds.

Each world follows the reference `minatar` package's rules: observations are its (10, 10, C) channels
as float32, actions are the game's minimal action set. Sticky actions are off by default; the world
option `sticky_action_prob` turns them on (the reference's default is 0.1: `StickyActions`).

* Breakout and Space Invaders wrap gymnax's ports (their `reset_env` / `step_env`; our base adds the
  time limit and auto-reset, never gymnax's own `step`).
* Asterix and Freeway are written here over per-row arrays (one entity or car per row), with no
  loops over entities: gymnax's ports unroll such loops into scatters that compile slowly, and
  gymnax 1.0's Asterix spawn never picks one of the free rows and overwrites a live entity when that
  row is the only free one or none is.
* Seaquest is `worlds.minatar_seaquest`. gymnax's port runs ~15k steps/s on one CPU core at any
  batch size: it compacts 100-slot entity buffers with scatters after every phase and collides
  bullets through 100 x 100 matrices, per copy.

Games written here take their randomness as uniforms (`transition(game, action, draws)`), so that
tests can replay the reference's random choices. Episodes end as in the reference (Freeway after
2500 + 1 steps, as `terminated`); `max_episode_steps` is the only truncation. gymnax is imported by
the factories only: importing it takes seconds.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from worlds import minatar_seaquest
from worlds.base import JaxWorld, WorldSpec
from worlds.errors import WorldOptionError

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
    "seaquest": MinAtarGame((0, 1, 2, 3, 4, 5), minatar_seaquest.CHANNELS, (0.0, 12.0)),
    # Up to 2 friendly bullets are in flight, each kills at most one alien.
    "space_invaders": MinAtarGame(
        (0, 1, 3, 5),
        ("cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet"),
        (0.0, 2.0),
    ),
}


def _spec(game: str, max_episode_steps: int) -> WorldSpec:
    if max_episode_steps < 1:
        raise WorldOptionError(f"minatar/{game}: max_episode_steps must be >= 1, got {max_episode_steps}")
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


class SpaceInvaders(GymnaxMinAtar):
    """Space Invaders, with the reference's `difficulty_ramping` switch."""

    def __init__(self, env, params, max_episode_steps: int, ramping: bool):
        super().__init__("space_invaders", env, params, max_episode_steps)
        self.ramping = ramping

    def _reset(self, key):
        state, obs = super()._reset(key)
        return state.replace(ramping=jnp.asarray(self.ramping)), obs


class DrawnMinAtar(JaxWorld):
    """A MinAtar game written here, its step a pure function of uniforms drawn from the key."""

    game: str
    num_draws: int  # uniforms one step consumes

    def transition(self, game, action, draws):
        """One step given its randomness, `draws` ([num_draws] uniforms in [0, 1)).

        Returns:
          (game state, observation, reward, terminated) as `_step`.
        """
        raise NotImplementedError

    def observe(self, game) -> jax.Array:
        """[10, 10, C] float32 observation of a game state."""
        raise NotImplementedError

    def _step(self, game, action, key):
        return self.transition(game, action, jax.random.uniform(key, (self.num_draws,)))


_COLUMNS = np.arange(10, dtype=np.int32)
# Asterix entities and Freeway cars: one in each of the rows 1..8.
_ENTITY_ROWS = np.arange(1, 9, dtype=np.int32)


def _rows_to_board(rows: jax.Array) -> jax.Array:
    """[8, 10, C] planes of rows 1..8 -> [10, 10, C] float32 board (rows 0 and 9 empty)."""
    return jnp.pad(rows, ((1, 1), (0, 0), (0, 0))).astype(jnp.float32)


@struct.dataclass
class AsterixState:
    """Asterix (reference attribute names in brackets); entity i lives in row i + 1 [entities]."""

    player_x: jax.Array  # [] int32 [player_x]
    player_y: jax.Array  # [] int32 [player_y]
    entity_x: jax.Array  # [8] int32
    entity_right: jax.Array  # [8] bool, moving right
    entity_gold: jax.Array  # [8] bool, treasure (else an enemy)
    entity_alive: jax.Array  # [8] bool
    spawn_interval: jax.Array  # [] int32 [spawn_speed]
    spawn_timer: jax.Array  # [] int32 [spawn_timer]
    move_interval: jax.Array  # [] int32 [move_speed]
    move_timer: jax.Array  # [] int32 [move_timer]
    ramp_timer: jax.Array  # [] int32 [ramp_timer]
    ramp_index: jax.Array  # [] int32 [ramp_index]


class Asterix(DrawnMinAtar):
    """Asterix: dodge enemies, collect gold; entities cross their row every `move_interval` + 1 steps.

    Draws: side (< 0.5: enters left, moving right), gold (< 1/3), then one score per row; a spawn
    takes the free row with the highest score, so a uniformly random free row as in the reference.
    """

    game = "asterix"
    num_draws = 10
    RAMP_INTERVAL = 100
    INIT_SPAWN_INTERVAL = 10
    INIT_MOVE_INTERVAL = 5

    def __init__(self, max_episode_steps: int, ramping: bool):
        self.spec = _spec(self.game, max_episode_steps)
        self.ramping = ramping

    def _reset(self, key):
        del key  # the reference start state is fixed
        zeros = jnp.zeros(8, jnp.int32)
        state = AsterixState(
            player_x=jnp.int32(5),
            player_y=jnp.int32(5),
            entity_x=zeros,
            entity_right=zeros.astype(bool),
            entity_gold=zeros.astype(bool),
            entity_alive=zeros.astype(bool),
            spawn_interval=jnp.int32(self.INIT_SPAWN_INTERVAL),
            spawn_timer=jnp.int32(self.INIT_SPAWN_INTERVAL),
            move_interval=jnp.int32(self.INIT_MOVE_INTERVAL),
            move_timer=jnp.int32(self.INIT_MOVE_INTERVAL),
            ramp_timer=jnp.int32(self.RAMP_INTERVAL),
            ramp_index=jnp.int32(0),
        )
        return state, self.observe(state)

    def transition(self, game: AsterixState, action, draws):
        s = game
        # Spawn into a random free row.
        spawn = s.spawn_timer == 0
        free = ~s.entity_alive
        row = jnp.argmax(jnp.where(free, draws[2:], -1.0))
        new = spawn & jnp.any(free) & (jnp.arange(8) == row)
        right = draws[0] < 0.5
        s = s.replace(
            entity_x=jnp.where(new, jnp.where(right, 0, 9), s.entity_x),
            entity_right=jnp.where(new, right, s.entity_right),
            entity_gold=jnp.where(new, draws[1] < 1.0 / 3.0, s.entity_gold),
            entity_alive=s.entity_alive | new,
            spawn_timer=jnp.where(spawn, s.spawn_interval, s.spawn_timer),
        )
        # The player moves (rows 1..8 only).
        a = jnp.asarray(GAMES[self.game].minimal_actions)[action]
        px = jnp.clip(s.player_x - (a == 1) + (a == 3), 0, 9)
        py = jnp.clip(s.player_y - (a == 2) + (a == 4), 1, 8)
        in_player_row = _ENTITY_ROWS == py

        def meet(x, alive):
            on_player = alive & in_player_row & (x == px)
            gold = on_player & s.entity_gold
            return alive & ~gold, jnp.sum(gold, dtype=jnp.int32), jnp.any(on_player & ~gold)

        alive, reward, terminated = meet(s.entity_x, s.entity_alive)
        # Entities move together on the move timer, leave at the edges, and may run into the player.
        move = s.move_timer == 0
        x = jnp.where(move & alive, s.entity_x + jnp.where(s.entity_right, 1, -1), s.entity_x)
        alive = alive & ((x >= 0) & (x <= 9))
        moved_alive, moved_reward, moved_terminated = meet(x, alive)
        alive = jnp.where(move, moved_alive, alive)
        reward = reward + jnp.where(move, moved_reward, 0)
        terminated = terminated | (move & moved_terminated)
        # Timers and the difficulty ramp.
        ramp = self.ramping & ((s.spawn_interval > 1) | (s.move_interval > 1))
        counting = ramp & (s.ramp_timer >= 0)
        level_up = ramp & ~counting
        s = s.replace(
            player_x=px,
            player_y=py,
            entity_x=x,
            entity_alive=alive,
            spawn_timer=s.spawn_timer - 1,
            move_timer=jnp.where(move, s.move_interval, s.move_timer) - 1,
            ramp_timer=jnp.where(
                counting, s.ramp_timer - 1, jnp.where(level_up, self.RAMP_INTERVAL, s.ramp_timer)
            ),
            move_interval=s.move_interval
            - (level_up & (s.move_interval > 1) & (s.ramp_index % 2 == 1)),
            spawn_interval=s.spawn_interval - (level_up & (s.spawn_interval > 1)),
            ramp_index=s.ramp_index + level_up,
        )
        return s, self.observe(s), reward.astype(jnp.float32), terminated

    def observe(self, game: AsterixState) -> jax.Array:
        s = game
        player = (jnp.arange(10)[:, None] == s.player_y) & (_COLUMNS == s.player_x)
        at = s.entity_x[:, None] == _COLUMNS  # [8, 10]
        behind = jnp.where(s.entity_right, s.entity_x - 1, s.entity_x + 1)[:, None] == _COLUMNS
        alive = s.entity_alive[:, None]
        rows = jnp.stack(
            [
                jnp.zeros((8, 10), bool),
                at & alive & ~s.entity_gold[:, None],
                behind & alive,
                at & alive & s.entity_gold[:, None],
            ],
            axis=-1,
        )
        return _rows_to_board(rows).at[:, :, 0].set(player.astype(jnp.float32))


@struct.dataclass
class FreewayState:
    """Freeway (reference attribute names in brackets); car i drives in row i + 1 [cars]."""

    chicken_y: jax.Array  # [] int32 [pos]
    move_timer: jax.Array  # [] int32, the chicken may move when 0 [move_timer]
    car_x: jax.Array  # [8] int32 [car[0]]
    car_timer: jax.Array  # [8] int32, the car moves when 0 [car[2]]
    car_speed: jax.Array  # [8] int32, sign = direction, moves every |speed| + 1 steps [car[3]]
    time_left: jax.Array  # [] int32, the game ends when it drops below 0 [terminate_timer]


class Freeway(DrawnMinAtar):
    """Freeway: cross 8 lanes of traffic (+1 per crossing); ends after 2501 steps (`terminated`).

    Draws (used at reset and on a crossing): 8 speeds (1 + floor(5 u)), then 8 directions (< 0.5:
    moving left), as the reference's `randint(1, 6, 8)` and `sign(rand(8) - 0.5)`.
    """

    game = "freeway"
    num_draws = 16
    PLAYER_SPEED = 3

    def __init__(self, max_episode_steps: int):
        self.spec = _spec(self.game, max_episode_steps)

    @staticmethod
    def _speeds(draws: jax.Array) -> jax.Array:
        magnitude = jnp.minimum(1 + (draws[:8] * 5).astype(jnp.int32), 5)
        return jnp.where(draws[8:] < 0.5, -magnitude, magnitude)

    def _reset(self, key):
        speed = self._speeds(jax.random.uniform(key, (self.num_draws,)))
        state = FreewayState(
            chicken_y=jnp.int32(9),
            move_timer=jnp.int32(self.PLAYER_SPEED),
            car_x=jnp.zeros(8, jnp.int32),
            car_timer=jnp.abs(speed),
            car_speed=speed,
            time_left=jnp.int32(FREEWAY_TIME_LIMIT),
        )
        return state, self.observe(state)

    def transition(self, game: FreewayState, action, draws):
        s = game
        a = jnp.asarray(GAMES[self.game].minimal_actions)[action]
        can_move = s.move_timer == 0
        up, down = can_move & (a == 2), can_move & (a == 4)
        y = jnp.clip(s.chicken_y - up + down, 0, 9)
        move_timer = jnp.where(up | down, self.PLAYER_SPEED, s.move_timer)
        # A crossing scores, re-draws every car's speed and direction, and restarts the chicken.
        crossed = y == 0
        speed = jnp.where(crossed, self._speeds(draws), s.car_speed)
        timer = jnp.where(crossed, jnp.abs(speed), s.car_timer)
        y = jnp.where(crossed, 9, y)
        # Cars move on their timers and wrap around. A car on the chicken, before or after its move,
        # sends it back to row 9 where no car drives, so the reference's car-by-car order is moot.
        in_chicken_row = _ENTITY_ROWS == y
        hit = in_chicken_row & (s.car_x == 4)
        moves = timer == 0
        x = jnp.where(moves, (s.car_x + jnp.where(speed > 0, 1, -1)) % 10, s.car_x)
        hit = hit | (in_chicken_row & moves & (x == 4))
        s = FreewayState(
            chicken_y=jnp.where(jnp.any(hit), 9, y),
            move_timer=move_timer - (move_timer > 0),
            car_x=x,
            car_timer=jnp.where(moves, jnp.abs(speed), timer - 1),
            car_speed=speed,
            time_left=s.time_left - 1,
        )
        return s, self.observe(s), crossed.astype(jnp.float32), s.time_left < 0

    def observe(self, game: FreewayState) -> jax.Array:
        s = game
        chicken = (jnp.arange(10)[:, None] == s.chicken_y) & (_COLUMNS == 4)
        car = s.car_x[:, None] == _COLUMNS  # [8, 10]
        behind = (jnp.where(s.car_speed > 0, s.car_x - 1, s.car_x + 1) % 10)[:, None] == _COLUMNS
        speed_channel = jnp.abs(s.car_speed)[:, None] == jnp.arange(1, 6)  # [8, 5]
        rows = jnp.concatenate(
            [
                jnp.zeros((8, 10, 1), bool),
                car[..., None],
                behind[..., None] & speed_channel[:, None],
            ],
            axis=-1,
        )
        return _rows_to_board(rows).at[:, :, 0].set(chicken.astype(jnp.float32))


class Seaquest(DrawnMinAtar):
    """Seaquest on `worlds.minatar_seaquest` (state: `SeaquestState`), all six actions.

    Draws: `minatar_seaquest.step`'s.
    """

    game = "seaquest"
    num_draws = minatar_seaquest.NUM_DRAWS

    def __init__(self, max_episode_steps: int, ramping: bool):
        self.spec = _spec(self.game, max_episode_steps)
        self.ramping = ramping

    def _reset(self, key):
        del key  # the reference start state is fixed
        state = minatar_seaquest.reset()
        return state, minatar_seaquest.observe(state)

    def transition(self, game, action, draws):
        state, reward, terminated = minatar_seaquest.step(game, action, draws, self.ramping)
        return state, minatar_seaquest.observe(state), reward.astype(jnp.float32), terminated

    def observe(self, game) -> jax.Array:
        return minatar_seaquest.observe(game)


class StickyActions(JaxWorld):
    """A world whose agent's action is replaced by its previous one with probability `prob`, as
    the reference MinAtar's `Environment.act` does (`sticky_action_prob`, 0.1 there): each step
    draws a uniform, and the action taken becomes the one to repeat.

    One difference: the reference keeps its last action across episodes; here a new episode
    starts with no-op (action 0) as the action to repeat, as the reference does only for the
    first episode after construction. It touches at most an episode's first step.
    """

    def __init__(self, world: JaxWorld, prob: float):
        self.world, self.prob = world, float(prob)
        self.spec = world.spec

    def _reset(self, key):
        game, obs = self.world._reset(key)
        return (game, jnp.zeros((), jnp.int32)), obs

    def _step(self, game, action, key):
        inner, last = game
        stick_key, step_key = jax.random.split(key)
        action = jnp.where(jax.random.uniform(stick_key) < self.prob, last, action)
        inner, obs, reward, terminated = self.world._step(inner, action, step_key)
        return (inner, jnp.asarray(action, jnp.int32)), obs, reward, terminated

    def _action_mask(self, game):
        return self.world._action_mask(game[0])

    def observe(self, game) -> jax.Array:
        return self.world.observe(game[0])

    def __repr__(self):
        return f"<StickyActions({self.prob}) {self.spec.name}>"


def _sticky(world: JaxWorld, prob: float) -> JaxWorld:
    """`world` itself at `prob` = 0 (its random stream unchanged), else `StickyActions`."""
    if not 0 <= prob < 1:
        raise WorldOptionError(
            f"sticky_action_prob must be in [0, 1), got {prob}; 0 turns sticky actions off "
            "and the reference MinAtar uses 0.1")
    return world if prob == 0 else StickyActions(world, prob)


def make_asterix(
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, ramping: bool = True,
    sticky_action_prob: float = 0.0,
) -> JaxWorld:
    """MinAtar Asterix: dodge enemies, collect gold (+1). Actions: noop, left, up, right, down."""
    return _sticky(Asterix(max_episode_steps, ramping), sticky_action_prob)


def make_breakout(
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, sticky_action_prob: float = 0.0
) -> JaxWorld:
    """MinAtar Breakout: +1 per brick, ends when the ball passes the paddle. Actions: noop, left, right."""
    from gymnax.environments.minatar.breakout import MinBreakout

    env = MinBreakout()
    return _sticky(GymnaxMinAtar("breakout", env, env.default_params, max_episode_steps),
                   sticky_action_prob)


def make_freeway(
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, sticky_action_prob: float = 0.0
) -> JaxWorld:
    """MinAtar Freeway: +1 per crossing, ends after 2501 steps. Actions: noop, up, down."""
    return _sticky(Freeway(max_episode_steps), sticky_action_prob)


def make_seaquest(
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, ramping: bool = True,
    sticky_action_prob: float = 0.0,
) -> JaxWorld:
    """MinAtar Seaquest: shoot enemies (+1), rescue divers, surface for air. All six actions."""
    return _sticky(Seaquest(max_episode_steps, ramping), sticky_action_prob)


def make_space_invaders(
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, ramping: bool = True,
    sticky_action_prob: float = 0.0,
) -> JaxWorld:
    """MinAtar Space Invaders: +1 per alien shot. Actions: noop, left, right, fire."""
    from gymnax.environments.minatar.space_invaders import MinSpaceInvaders

    env = MinSpaceInvaders()
    return _sticky(SpaceInvaders(env, env.default_params, max_episode_steps, ramping),
                   sticky_action_prob)
