"""MinAtar Seaquest as fixed-size arrays that vectorise well under `vmap`.

The reference game (`minatar/environments/seaquest.py`) keeps Python lists of fish, subs, divers and
bullets, appends to them and removes from them while iterating. Its rules depend on list order in a few
places: a friendly bullet kills the *first* fish (else sub) on its cell, a moving enemy is killed by the
*first* friendly bullet on its cell, and the loops run from the newest entity to the oldest, so divers
picked up and bullets used up early are not there for later ones.

Here every list is a fixed-capacity array kept newest-first: a spawn shifts the array by one and writes
slot 0, a removal only clears `alive`. Index order is then list order reversed, so "first in the list"
is the highest live index and "newest first" is index order. The few order-dependent interactions
(friendly bullets against enemies, divers against the rescue count) are short unrolled loops over the
2 friendly-bullet or the 2 diver slots, each a vector operation over the enemy slots; everything else
is elementwise over slots. There is no `lax.cond`, `while_loop` or scatter, so a vmapped step costs the
same work per copy at any batch size.

Enemy bullets never interact with each other or with anything but the player, so they are two sets of
cells (moving right, moving left), one 10-bit mask per row; the observation is built from such row masks
too.

Capacities, and why they are enough:
* friendly bullets: 2. One shot per 5 steps, and a bullet fired at step t is off the board by its
  move at step t + 9, so at most one older bullet is alive when the gun fires.
* divers: 2. One spawn per 30 steps, and a diver spawned at step t is off the board by its tenth
  move at step t + 59, so at most one older diver is alive at a spawn.
* fish and subs: 32 together. At the fastest difficulty (a spawn every step, a move every 3 steps) an
  enemy crosses the board in 29 steps. Only contrived play that ramps the difficulty within a few dozen
  steps could exceed it; then the oldest enemy is dropped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

BOARD = 10
MAX_OXYGEN = 200
INIT_SPAWN_INTERVAL = 20
DIVER_SPAWN_INTERVAL = 30
INIT_MOVE_INTERVAL = 5
SHOT_COOL_DOWN = 5
ENEMY_SHOT_INTERVAL = 10
DIVER_MOVE_INTERVAL = 5
MAX_DIVERS_CARRIED = 6

MAX_FRIENDLY_BULLETS = 2
MAX_DIVERS = 2
MAX_ENEMIES = 32
NUM_DRAWS = 5  # uniforms that one step consumes, see `step`

# Reference channel order of the (10, 10, 10) observation.
CHANNELS = (
    "sub_front",
    "sub_back",
    "friendly_bullet",
    "trail",
    "enemy_bullet",
    "enemy_fish",
    "enemy_sub",
    "oxygen_guage",
    "diver_guage",
    "diver",
)
# Index into MinAtar's full action set ('n', 'l', 'u', 'r', 'd', 'f'); Seaquest uses all six.
NOOP, LEFT, UP, RIGHT, DOWN, FIRE = range(6)

_ROWS = np.arange(BOARD, dtype=np.int32)
_ROW_BITS = (1 << BOARD) - 1


@struct.dataclass
class Bullets:
    """Friendly bullets, newest first."""

    x: jax.Array  # [MAX_FRIENDLY_BULLETS] int32 column
    y: jax.Array  # [MAX_FRIENDLY_BULLETS] int32 row
    right: jax.Array  # [MAX_FRIENDLY_BULLETS] bool, moving right
    alive: jax.Array  # [MAX_FRIENDLY_BULLETS] bool


@struct.dataclass
class Divers:
    """Divers, newest first."""

    x: jax.Array  # [MAX_DIVERS] int32
    y: jax.Array  # [MAX_DIVERS] int32
    right: jax.Array  # [MAX_DIVERS] bool
    move_timer: jax.Array  # [MAX_DIVERS] int32, moves when 0
    alive: jax.Array  # [MAX_DIVERS] bool


@struct.dataclass
class Enemies:
    """Fish and enemy subs in one array, newest first (each kind keeps its own list order)."""

    x: jax.Array  # [MAX_ENEMIES] int32
    y: jax.Array  # [MAX_ENEMIES] int32
    right: jax.Array  # [MAX_ENEMIES] bool
    move_timer: jax.Array  # [MAX_ENEMIES] int32, moves when 0
    shot_timer: jax.Array  # [MAX_ENEMIES] int32, a sub shoots when 0 (unused for fish)
    is_sub: jax.Array  # [MAX_ENEMIES] bool
    alive: jax.Array  # [MAX_ENEMIES] bool


@struct.dataclass
class SeaquestState:
    """Full state of one Seaquest game (reference attribute names in brackets)."""

    sub_x: jax.Array  # [] int32 [sub_x]
    sub_y: jax.Array  # [] int32 [sub_y]
    sub_right: jax.Array  # [] bool, facing right [sub_or]
    oxygen: jax.Array  # [] int32 [oxygen]
    divers_carried: jax.Array  # [] int32, < 0 after a full rescue, as the reference [diver_count]
    shot_timer: jax.Array  # [] int32 [shot_timer]
    surfaced: jax.Array  # [] bool, already surfaced since last dive [surface]
    enemy_spawn_interval: jax.Array  # [] int32 [e_spawn_speed]
    enemy_spawn_timer: jax.Array  # [] int32 [e_spawn_timer]
    diver_spawn_timer: jax.Array  # [] int32 [d_spawn_timer]
    move_interval: jax.Array  # [] int32 [move_speed]
    ramp_index: jax.Array  # [] int32 [ramp_index]
    bullets: Bullets  # [f_bullets]
    divers: Divers  # [divers]
    enemies: Enemies  # [e_fish + e_subs]
    enemy_bullets_right: jax.Array  # [BOARD] int32 row masks, bit x: one at column x [e_bullets]
    enemy_bullets_left: jax.Array  # [BOARD] int32 row masks


def _i32(value) -> jax.Array:
    return jnp.asarray(value, jnp.int32)


def _push_front(array: jax.Array, value, enabled: jax.Array) -> jax.Array:
    """Inserts `value` at slot 0 and drops the last slot when `enabled`."""
    shifted = jnp.concatenate([jnp.asarray(value, array.dtype)[None], array[:-1]])
    return jnp.where(enabled, shifted, array)


def _last(mask: jax.Array) -> jax.Array:
    """One-hot of the highest True index of `mask` (the oldest entity), all False if none."""
    index = jnp.arange(mask.shape[0])
    return index == jnp.max(jnp.where(mask, index, -1))


def _first(mask: jax.Array) -> jax.Array:
    """One-hot of the lowest True index of `mask` (the newest entity), all False if none."""
    index = jnp.arange(mask.shape[0])
    return index == jnp.min(jnp.where(mask, index, mask.shape[0]))


def _step_direction(right: jax.Array) -> jax.Array:
    return jnp.where(right, 1, -1)


def _on_board(x: jax.Array) -> jax.Array:
    return (x >= 0) & (x < BOARD)


def _row_masks(y: jax.Array, bits: jax.Array, on: jax.Array) -> jax.Array:
    """[BOARD] int32: OR of `bits` into row `y` of every entity with `on` ([N] arrays)."""
    per_row = jnp.where((y[:, None] == _ROWS[None, :]) & on[:, None], bits[:, None], 0)
    return jax.lax.reduce(per_row, jnp.int32(0), jax.lax.bitwise_or, (0,))


def _bit(x: jax.Array) -> jax.Array:
    """1 << x for on-board columns, else 0."""
    return jnp.where(_on_board(x), jnp.left_shift(1, jnp.clip(x, 0, BOARD - 1)), 0)


def _trail_bit(bit: jax.Array, right: jax.Array) -> jax.Array:
    """The cell behind an entity (its previous cell); nothing when that is off the board."""
    return jnp.where(right, jnp.right_shift(bit, 1), jnp.left_shift(bit, 1) & _ROW_BITS)


def reset() -> SeaquestState:
    """The reference start state (deterministic): sub at the surface, no entities."""
    return SeaquestState(
        sub_x=_i32(5),
        sub_y=_i32(0),
        sub_right=jnp.asarray(False),
        oxygen=_i32(MAX_OXYGEN),
        divers_carried=_i32(0),
        shot_timer=_i32(0),
        surfaced=jnp.asarray(True),
        enemy_spawn_interval=_i32(INIT_SPAWN_INTERVAL),
        enemy_spawn_timer=_i32(INIT_SPAWN_INTERVAL),
        diver_spawn_timer=_i32(DIVER_SPAWN_INTERVAL),
        move_interval=_i32(INIT_MOVE_INTERVAL),
        ramp_index=_i32(0),
        bullets=Bullets(
            x=jnp.zeros(MAX_FRIENDLY_BULLETS, jnp.int32),
            y=jnp.zeros(MAX_FRIENDLY_BULLETS, jnp.int32),
            right=jnp.zeros(MAX_FRIENDLY_BULLETS, bool),
            alive=jnp.zeros(MAX_FRIENDLY_BULLETS, bool),
        ),
        divers=Divers(
            x=jnp.zeros(MAX_DIVERS, jnp.int32),
            y=jnp.zeros(MAX_DIVERS, jnp.int32),
            right=jnp.zeros(MAX_DIVERS, bool),
            move_timer=jnp.zeros(MAX_DIVERS, jnp.int32),
            alive=jnp.zeros(MAX_DIVERS, bool),
        ),
        enemies=Enemies(
            x=jnp.zeros(MAX_ENEMIES, jnp.int32),
            y=jnp.zeros(MAX_ENEMIES, jnp.int32),
            right=jnp.zeros(MAX_ENEMIES, bool),
            move_timer=jnp.zeros(MAX_ENEMIES, jnp.int32),
            shot_timer=jnp.zeros(MAX_ENEMIES, jnp.int32),
            is_sub=jnp.zeros(MAX_ENEMIES, bool),
            alive=jnp.zeros(MAX_ENEMIES, bool),
        ),
        enemy_bullets_right=jnp.zeros(BOARD, jnp.int32),
        enemy_bullets_left=jnp.zeros(BOARD, jnp.int32),
    )


def _spawn(s: SeaquestState, draws: jax.Array) -> SeaquestState:
    """Spawns an enemy and a diver when their timers are up (reference `_spawn_enemy/_spawn_diver`)."""
    enemy_right, enemy_is_sub = draws[0] < 0.5, draws[1] < 1.0 / 3.0
    enemy_y = jnp.minimum(1 + (draws[2] * 8).astype(jnp.int32), 8)
    diver_right = draws[3] < 0.5
    diver_y = jnp.minimum(1 + (draws[4] * 8).astype(jnp.int32), 8)

    e = s.enemies
    enemy_due = s.enemy_spawn_timer == 0
    # No spawn into a row that has an enemy moving the other way.
    blocked = jnp.any(e.alive & (e.y == enemy_y) & (e.right != enemy_right))
    add = enemy_due & ~blocked
    enemies = Enemies(
        x=_push_front(e.x, jnp.where(enemy_right, 0, BOARD - 1), add),
        y=_push_front(e.y, enemy_y, add),
        right=_push_front(e.right, enemy_right, add),
        move_timer=_push_front(e.move_timer, s.move_interval, add),
        shot_timer=_push_front(e.shot_timer, ENEMY_SHOT_INTERVAL, add),
        is_sub=_push_front(e.is_sub, enemy_is_sub, add),
        alive=_push_front(e.alive, True, add),
    )

    d = s.divers
    diver_due = s.diver_spawn_timer == 0
    divers = Divers(
        x=_push_front(d.x, jnp.where(diver_right, 0, BOARD - 1), diver_due),
        y=_push_front(d.y, diver_y, diver_due),
        right=_push_front(d.right, diver_right, diver_due),
        move_timer=_push_front(d.move_timer, DIVER_MOVE_INTERVAL, diver_due),
        alive=_push_front(d.alive, True, diver_due),
    )
    return s.replace(
        enemies=enemies,
        divers=divers,
        enemy_spawn_timer=jnp.where(enemy_due, s.enemy_spawn_interval, s.enemy_spawn_timer),
        diver_spawn_timer=jnp.where(diver_due, DIVER_SPAWN_INTERVAL, s.diver_spawn_timer),
    )


def _act(s: SeaquestState, action: jax.Array) -> SeaquestState:
    """Fires (when the gun is cool) or moves the player's sub; `action` indexes the full set."""
    fire = (action == FIRE) & (s.shot_timer == 0)
    b = s.bullets
    bullets = Bullets(
        x=_push_front(b.x, s.sub_x, fire),
        y=_push_front(b.y, s.sub_y, fire),
        right=_push_front(b.right, s.sub_right, fire),
        alive=_push_front(b.alive, True, fire),
    )
    left, right = action == LEFT, action == RIGHT
    return s.replace(
        bullets=bullets,
        shot_timer=jnp.where(fire, SHOT_COOL_DOWN, s.shot_timer),
        sub_x=jnp.clip(s.sub_x - left + right, 0, BOARD - 1),
        sub_y=jnp.clip(s.sub_y - (action == UP) + (action == DOWN), 0, BOARD - 2),
        sub_right=jnp.where(left, False, jnp.where(right, True, s.sub_right)),
    )


def _move_friendly_bullets(s: SeaquestState) -> tuple[SeaquestState, jax.Array]:
    """Newest bullet first: move, leave the board, or kill the first fish (else sub) on the cell."""
    b, e = s.bullets, s.enemies
    enemy_alive, reward = e.alive, _i32(0)
    xs, alives = [], []
    for i in range(MAX_FRIENDLY_BULLETS):
        x = jnp.where(b.alive[i], b.x[i] + _step_direction(b.right[i]), b.x[i])
        alive = b.alive[i] & _on_board(x)
        here = enemy_alive & (e.x == x) & (e.y == b.y[i]) & alive
        fish = here & ~e.is_sub
        target = _last(jnp.where(jnp.any(fish), fish, here & e.is_sub))
        hit = jnp.any(target)
        enemy_alive = enemy_alive & ~target
        reward = reward + hit
        xs.append(x)
        alives.append(alive & ~hit)
    bullets = b.replace(x=jnp.stack(xs), alive=jnp.stack(alives))
    return s.replace(bullets=bullets, enemies=e.replace(alive=enemy_alive)), reward


def _move_divers(s: SeaquestState) -> SeaquestState:
    """Newest diver first: picked up if on the sub (and room), else moves on its timer."""
    d = s.divers
    carried = s.divers_carried
    xs, timers, alives = [], [], []
    for i in range(MAX_DIVERS):
        x, y, timer = d.x[i], d.y[i], d.move_timer[i]
        picked = d.alive[i] & (x == s.sub_x) & (y == s.sub_y) & (carried < MAX_DIVERS_CARRIED)
        carried = carried + picked
        stays = d.alive[i] & ~picked
        moves = stays & (timer == 0)
        timer = jnp.where(moves, DIVER_MOVE_INTERVAL, jnp.where(stays, timer - 1, timer))
        x = jnp.where(moves, x + _step_direction(d.right[i]), x)
        left_board = moves & ~_on_board(x)
        picked = moves & ~left_board & (x == s.sub_x) & (y == s.sub_y)
        picked = picked & (carried < MAX_DIVERS_CARRIED)
        carried = carried + picked
        xs.append(x)
        timers.append(timer)
        alives.append(stays & ~left_board & ~picked)
    divers = d.replace(x=jnp.stack(xs), move_timer=jnp.stack(timers), alive=jnp.stack(alives))
    return s.replace(divers=divers, divers_carried=carried)


def _move_enemies(
    s: SeaquestState, subs: bool
) -> tuple[SeaquestState, jax.Array, jax.Array, jax.Array]:
    """Moves every live sub (or fish) on its timer; reference loop over `e_subs` (or `e_fish`).

    An enemy on the player's cell, before or after its move, ends the game. An enemy that moved onto a
    friendly bullet dies with it (the newest such enemy takes the oldest such bullet, as the reference
    loops do). Subs then shoot on their own timer, even one that just died or left the board.

    Returns:
      (state, reward, terminated, fire) with `fire` [MAX_ENEMIES] bool: subs whose shot is due.
    """
    e, b = s.enemies, s.bullets
    mine = e.alive & (e.is_sub if subs else ~e.is_sub)
    on_player = (e.y == s.sub_y) & (e.x == s.sub_x)
    terminated = jnp.any(mine & on_player)
    moves = mine & (e.move_timer == 0)
    move_timer = jnp.where(moves, s.move_interval, jnp.where(mine, e.move_timer - 1, e.move_timer))
    x = jnp.where(moves, e.x + _step_direction(e.right), e.x)
    left_board = moves & ~_on_board(x)
    lands_on_player = moves & ~left_board & (x == s.sub_x) & (e.y == s.sub_y)
    terminated = terminated | jnp.any(lands_on_player)
    can_be_shot = moves & ~left_board & ~lands_on_player

    shot = jnp.zeros_like(mine)
    bullet_alive = list(b.alive)
    reward = _i32(0)
    for j in reversed(range(MAX_FRIENDLY_BULLETS)):  # oldest bullet first
        match = can_be_shot & ~shot & (x == b.x[j]) & (e.y == b.y[j]) & bullet_alive[j]
        shot = shot | _first(match)
        hit = jnp.any(match)
        bullet_alive[j] = bullet_alive[j] & ~hit
        reward = reward + hit

    fire = mine & (e.shot_timer == 0) if subs else jnp.zeros_like(mine)
    shot_timer = e.shot_timer
    if subs:
        shot_timer = jnp.where(
            fire, ENEMY_SHOT_INTERVAL, jnp.where(mine, shot_timer - 1, shot_timer)
        )
    enemies = e.replace(
        x=x, move_timer=move_timer, shot_timer=shot_timer, alive=e.alive & ~left_board & ~shot
    )
    bullets = b.replace(alive=jnp.stack(bullet_alive))
    return s.replace(enemies=enemies, bullets=bullets), reward, terminated, fire


def _shoot_and_move_enemy_bullets(
    s: SeaquestState, fire: jax.Array
) -> tuple[SeaquestState, jax.Array]:
    """Adds the subs' new bullets, then moves every enemy bullet; one on the player ends the game."""
    e = s.enemies
    bit = _bit(e.x)  # a sub that just left the board fires off the board: that bullet never counts
    right = s.enemy_bullets_right | _row_masks(e.y, bit, fire & e.right)
    left = s.enemy_bullets_left | _row_masks(e.y, bit, fire & ~e.right)
    player = jnp.where(_ROWS == s.sub_y, jnp.left_shift(1, s.sub_x), 0)
    hit_before = jnp.any((right | left) & player)
    right = jnp.left_shift(right, 1) & _ROW_BITS
    left = jnp.right_shift(left, 1)
    hit_after = jnp.any((right | left) & player)
    return s.replace(enemy_bullets_right=right, enemy_bullets_left=left), hit_before | hit_after


def _tick(s: SeaquestState, ramping: bool) -> tuple[SeaquestState, jax.Array, jax.Array]:
    """Timers, oxygen and surfacing (reference end of `act` and `_surface`)."""
    terminated = s.oxygen <= 0
    underwater = s.sub_y > 0
    surfacing = ~underwater & ~s.surfaced
    terminated = terminated | (surfacing & (s.divers_carried == 0))
    rescue = surfacing & (s.divers_carried != 0)
    full = s.divers_carried == MAX_DIVERS_CARRIED
    reward = jnp.where(rescue & full, s.oxygen * 10 // MAX_OXYGEN, 0)
    carried = jnp.where(rescue, jnp.where(full, 0, s.divers_carried) - 1, s.divers_carried)
    oxygen = jnp.where(underwater, s.oxygen - 1, jnp.where(rescue, MAX_OXYGEN, s.oxygen))
    ramp = rescue & ((s.enemy_spawn_interval > 1) | (s.move_interval > 2)) & ramping
    faster_moves = ramp & (s.move_interval > 2) & (s.ramp_index % 2 == 1)
    faster_spawns = ramp & (s.enemy_spawn_interval > 1)
    s = s.replace(
        enemy_spawn_timer=s.enemy_spawn_timer - (s.enemy_spawn_timer > 0),
        diver_spawn_timer=s.diver_spawn_timer - (s.diver_spawn_timer > 0),
        shot_timer=s.shot_timer - (s.shot_timer > 0),
        oxygen=oxygen,
        surfaced=jnp.where(underwater, False, jnp.where(rescue, True, s.surfaced)),
        divers_carried=carried,
        move_interval=s.move_interval - faster_moves,
        enemy_spawn_interval=s.enemy_spawn_interval - faster_spawns,
        ramp_index=s.ramp_index + ramp,
    )
    return s, reward, terminated


def step(
    s: SeaquestState, action: jax.Array, draws: jax.Array, ramping: bool = True
) -> tuple[SeaquestState, jax.Array, jax.Array]:
    """One reference `act`: spawn, player, friendly bullets, divers, subs, enemy bullets, fish, timers.

    Args:
      s: the game state.
      action: [] int, index into the full action set ('n', 'l', 'u', 'r', 'd', 'f').
      draws: [NUM_DRAWS] float uniforms in [0, 1), all of the step's randomness: the spawned enemy's
        side (< 0.5: enters left, moving right), kind (< 1/3: sub) and row (1 + floor(8 u)), then the
        spawned diver's side and row. Used only on steps whose spawn timers are up.
      ramping: whether surfacing speeds the game up (reference `difficulty_ramping`).

    Returns:
      (next state, [] int32 reward, [] bool terminated).
    """
    s = _spawn(s, draws)
    s = _act(s, jnp.asarray(action, jnp.int32))
    s, reward = _move_friendly_bullets(s)
    s = _move_divers(s)
    s, sub_reward, sub_hit, fire = _move_enemies(s, subs=True)
    s, bullet_hit = _shoot_and_move_enemy_bullets(s, fire)
    s, fish_reward, fish_hit = _move_enemies(s, subs=False)[:3]
    s, surface_reward, out_of_air = _tick(s, ramping)
    terminated = sub_hit | bullet_hit | fish_hit | out_of_air
    return s, reward + sub_reward + fish_reward + surface_reward, terminated


def observe(s: SeaquestState) -> jax.Array:
    """[10, 10, 10] float32 observation with the reference channels (`CHANNELS`)."""
    e, d, b = s.enemies, s.divers, s.bullets
    enemy_bit, diver_bit = _bit(e.x), _bit(d.x)
    trail = _row_masks(e.y, _trail_bit(enemy_bit, e.right), e.alive) | _row_masks(
        d.y, _trail_bit(diver_bit, d.right), d.alive
    )
    sub_bit = jnp.left_shift(1, s.sub_x)
    on_sub_row = _ROWS == s.sub_y
    bottom = _ROWS == BOARD - 1
    oxygen_cells = jnp.maximum(s.oxygen, 0) * 10 // MAX_OXYGEN
    carried = jnp.clip(s.divers_carried, 0, 9)
    diver_gauge = jnp.left_shift(1, 9) - jnp.left_shift(1, 9 - carried)  # columns [9 - n, 9)
    rows = jnp.stack(
        [
            jnp.where(on_sub_row, sub_bit, 0),
            jnp.where(on_sub_row, _trail_bit(sub_bit, s.sub_right), 0),
            _row_masks(b.y, _bit(b.x), b.alive),
            trail,
            s.enemy_bullets_right | s.enemy_bullets_left,
            _row_masks(e.y, enemy_bit, e.alive & ~e.is_sub),
            _row_masks(e.y, enemy_bit, e.alive & e.is_sub),
            jnp.where(bottom, jnp.left_shift(1, oxygen_cells) - 1, 0),
            jnp.where(bottom, diver_gauge, 0),
            _row_masks(d.y, diver_bit, d.alive),
        ]
    )  # [channel, row] bit masks over columns
    cells = jnp.right_shift(rows[:, :, None], _ROWS[None, None, :]) & 1
    return jnp.transpose(cells, (1, 2, 0)).astype(jnp.float32)
