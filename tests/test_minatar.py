"""MinAtar worlds: jitted smoke episodes, one compile per step, and the reference `minatar` package.

The reference tests roll the reference game (`minatar.Environment(game, sticky_action_prob=0.0)`) with
random minimal-set actions, from its own start states and from harder ones set up by hand (denser
or faster enemies, sparse bricks or aliens, divers on board, late ramp stages). Before every reference
step its state is copied into ours, then both take the same action and we compare, on every step:

* the observation of the copied state (every channel, every cell): channel semantics;
* the next observation, reward and terminal flag, exactly;
* the next game state: every timer, speed, position and flag; for Seaquest the entity lists in their
  list order (enemy bullets as a set: identical ones cannot be told apart).

Not compared: the start states themselves (our resets draw from a JAX key, and are copied over),
gymnax's own step counter, and the relative order of Seaquest's fish and subs, which are separate
lists in the reference. Steps with randomness (Asterix and Seaquest spawns, Freeway's speed re-draw on
a crossing) are compared too: the reference's next draws are read off a copy of its random generator
and handed to our `transition` as uniforms that decide the same way.
"""

from __future__ import annotations

import copy
import functools
import pathlib
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest
from extras import require

import worlds
from worlds import minatar_seaquest
from worlds.minatar import FREEWAY_TIME_LIMIT, GAMES

GAME_NAMES = tuple(GAMES)
_WORLDS = {}


def _world(game: str):
    if game not in _WORLDS:
        _WORLDS[game] = worlds.make(f"minatar/{game}")
    return _WORLDS[game]


# --- the world interface -----------------------------------------------------------------------


@pytest.mark.parametrize("game", GAME_NAMES)
def test_spec(game):
    spec = _world(game).spec
    assert spec.name == f"minatar/{game}"
    assert spec.observation_shape == (10, 10, len(GAMES[game].channels))
    assert spec.observation_dtype == "float32"
    assert spec.observation_kind == "image"
    assert spec.num_actions == len(GAMES[game].minimal_actions) == len(spec.action_names)
    assert spec.action_names[0] == "noop"
    assert spec.max_episode_steps == 10_000
    assert worlds.make(f"minatar/{game}", max_episode_steps=7).spec.max_episode_steps == 7


@pytest.mark.parametrize("game", GAME_NAMES)
def test_smoke_rollout_under_scan_and_vmap_compiles_once(game):
    """Jitted, vmapped random rollouts in `lax.scan` chunks that carry the state from call to call.

    Checks shapes, dtypes, binary images, rewards in range and auto-reset (the step count restarts
    after every end, truncation at the limit included); `assert_max_traces` proves that the step,
    fed reset states first and stepped states after, compiles once.
    """
    limit, batch, chunk, chunks = 40, 4, 30, 3
    world = worlds.make(f"minatar/{game}", max_episode_steps=limit)
    chex.clear_trace_counter()
    step = chex.assert_max_traces(world.step, n=1)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def rollout(state, key):
        def body(state, key):
            action_key, step_key = jax.random.split(key)
            actions = jax.random.randint(action_key, (batch,), 0, world.spec.num_actions)
            state, ts = jax.vmap(step)(state, actions, jax.random.split(step_key, batch))
            return state, (ts, state.step_count)

        return jax.lax.scan(body, state, jax.random.split(key, chunk))

    state, first = jax.jit(jax.vmap(world.reset))(jax.random.split(jax.random.key(0), batch))
    outputs = []
    for i in range(chunks):
        state, output = rollout(state, jax.random.key(i))
        outputs.append(jax.device_get(output))
    ts, counts = jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)

    steps, shape = chunk * chunks, world.spec.observation_shape
    assert first.observation.shape == (batch, *shape)
    assert ts.observation.shape == (steps, batch, *shape)
    assert ts.observation.dtype == first.observation.dtype == np.float32
    assert np.isin(ts.observation, (0.0, 1.0)).all()
    assert ts.reward.dtype == np.float32 and np.isfinite(ts.reward).all()
    low, high = world.spec.reward_range
    assert ((ts.reward >= low) & (ts.reward <= high)).all()
    assert ts.terminated.dtype == ts.truncated.dtype == np.bool_
    assert ts.action_mask.shape == (steps, batch, world.spec.num_actions)
    assert not (ts.terminated & ts.truncated).any()
    done = ts.terminated | ts.truncated
    assert done.any(), "no episode ended: auto-reset untested"
    previous = np.concatenate([np.zeros((1, batch), np.int32), counts[:-1]])
    np.testing.assert_array_equal(counts, np.where(done, 0, previous + 1))
    np.testing.assert_array_equal(ts.truncated, ~ts.terminated & (previous + 1 >= limit))


def test_import_does_not_import_gymnax():
    code = "import sys, worlds, worlds.minatar; assert 'gymnax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=pathlib.Path(__file__).parents[1])


# --- the reference package -----------------------------------------------------------------------


def _reference(game: str, seed: int):
    minatar = require("minatar", "the reference package (dev extra: pip install -e \".[dev]\")")
    ref = minatar.Environment(game, sticky_action_prob=0.0)
    ref.seed(seed)
    ref.reset()
    return ref


@pytest.mark.parametrize("game", GAME_NAMES)
def test_channels_and_actions_match_reference(game):
    ref = _reference(game, seed=0)
    channels = sorted(ref.env.channels, key=ref.env.channels.get)
    assert tuple(channels) == GAMES[game].channels
    assert tuple(ref.minimal_action_set()) == GAMES[game].minimal_actions
    assert tuple(ref.state_shape()) == _world(game).spec.observation_shape


def _typed_like(template, **fields):
    """`template` (a game state) with `fields` replaced by numpy arrays of the template's dtypes."""
    return template.replace(
        **{k: np.asarray(v, getattr(template, k).dtype) for k, v in fields.items()}
    )


def _template(game: str):
    """The structure and dtypes of the game's state (leaves are shapes, to be replaced)."""
    return jax.eval_shape(_world(game).reset, jax.random.key(0))[0].game


def _breakout_state(env, template):
    return _typed_like(
        template,
        ball_y=env.ball_y,
        ball_x=env.ball_x,
        ball_dir=env.ball_dir,
        pos=env.pos,
        brick_map=env.brick_map,
        strike=env.strike,
        last_y=env.last_y,
        last_x=env.last_x,
        terminal=env.terminal,
        time=0,
    )


def _space_invaders_state(env, template):
    return _typed_like(
        template,
        pos=env.pos,
        f_bullet_map=env.f_bullet_map,
        e_bullet_map=env.e_bullet_map,
        alien_map=env.alien_map,
        alien_dir=env.alien_dir,
        enemy_move_interval=env.enemy_move_interval,
        alien_move_timer=env.alien_move_timer,
        alien_shot_timer=env.alien_shot_timer,
        ramp_index=env.ramp_index,
        shot_timer=env.shot_timer,
        ramping=env.ramping,
        terminal=env.terminal,
        time=0,
    )


def _freeway_state(env, template):
    assert [car[1] for car in env.cars] == list(range(1, 9))
    return _typed_like(
        template,
        chicken_y=env.pos,
        move_timer=env.move_timer,
        car_x=[car[0] for car in env.cars],
        car_timer=[car[2] for car in env.cars],
        car_speed=[car[3] for car in env.cars],
        time_left=env.terminate_timer,
    )


def _asterix_state(env, template):
    entities = [(0, 0, False, False) if e is None else e for e in env.entities]
    assert all(e is None or e[1] == row + 1 for row, e in enumerate(env.entities))
    return _typed_like(
        template,
        player_x=env.player_x,
        player_y=env.player_y,
        entity_x=[e[0] for e in entities],
        entity_right=[e[2] for e in entities],
        entity_gold=[e[3] for e in entities],
        entity_alive=[e is not None for e in env.entities],
        spawn_interval=env.spawn_speed,
        spawn_timer=env.spawn_timer,
        move_interval=env.move_speed,
        move_timer=env.move_timer,
        ramp_timer=env.ramp_timer,
        ramp_index=env.ramp_index,
    )


def _asterix_canonical(state):
    """Dead entities' leftover fields zeroed, as in a state copied from the reference."""
    alive = state.entity_alive
    return state.replace(
        entity_x=np.where(alive, state.entity_x, 0),
        entity_right=alive & state.entity_right,
        entity_gold=alive & state.entity_gold,
    )


def _newest_first(items, capacity, width):
    """[width, capacity] int32 columns of a reference list (oldest first), newest in slot 0."""
    assert len(items) <= capacity, f"{len(items)} entities for {capacity} slots"
    columns = np.zeros((width, capacity), np.int32)
    for slot, item in enumerate(reversed(items)):
        columns[:, slot] = [int(v) for v in item[:width]]
    return columns


def _seaquest_state(env, template):
    sq = minatar_seaquest
    fish = [list(f) + [0, 0] for f in env.e_fish]  # shot timer unused, not a sub
    subs = [list(s) + [1] for s in env.e_subs]
    enemies = _newest_first(fish + subs, sq.MAX_ENEMIES, 6)  # each kind keeps its list order
    alive = np.arange(sq.MAX_ENEMIES) < len(fish) + len(subs)
    bullets = _newest_first(env.f_bullets, sq.MAX_FRIENDLY_BULLETS, 3)
    divers = _newest_first(env.divers, sq.MAX_DIVERS, 4)
    rows = {True: np.zeros(10, np.int32), False: np.zeros(10, np.int32)}
    for x, y, right in env.e_bullets:
        rows[bool(right)][y] |= 1 << x
    return _typed_like(
        template,
        sub_x=env.sub_x,
        sub_y=env.sub_y,
        sub_right=env.sub_or,
        oxygen=env.oxygen,
        divers_carried=env.diver_count,
        shot_timer=env.shot_timer,
        surfaced=env.surface,
        enemy_spawn_interval=env.e_spawn_speed,
        enemy_spawn_timer=env.e_spawn_timer,
        diver_spawn_timer=env.d_spawn_timer,
        move_interval=env.move_speed,
        ramp_index=env.ramp_index,
        enemy_bullets_right=rows[True],
        enemy_bullets_left=rows[False],
    ).replace(
        bullets=sq.Bullets(
            x=bullets[0],
            y=bullets[1],
            right=bullets[2].astype(bool),
            alive=np.arange(sq.MAX_FRIENDLY_BULLETS) < len(env.f_bullets),
        ),
        divers=sq.Divers(
            x=divers[0],
            y=divers[1],
            right=divers[2].astype(bool),
            move_timer=divers[3],
            alive=np.arange(sq.MAX_DIVERS) < len(env.divers),
        ),
        enemies=sq.Enemies(
            x=enemies[0],
            y=enemies[1],
            right=enemies[2].astype(bool),
            move_timer=enemies[3],
            shot_timer=enemies[4],
            is_sub=enemies[5].astype(bool),
            alive=alive,
        ),
    )


def _seaquest_lists(state) -> dict:
    """Our Seaquest state (numpy) as the reference's lists, oldest first, and scalars."""

    def oldest_first(alive, *columns):
        return [tuple(int(c[i]) for c in columns) for i in np.flatnonzero(alive)[::-1]]

    e, d, b = state.enemies, state.divers, state.bullets
    enemy_bullets = {
        (x, y, right)
        for right, rows in ((1, state.enemy_bullets_right), (0, state.enemy_bullets_left))
        for y in range(10)
        for x in range(10)
        if rows[y] >> x & 1
    }
    return dict(
        scalars=tuple(
            int(v)
            for v in (
                state.sub_x,
                state.sub_y,
                state.sub_right,
                state.oxygen,
                state.divers_carried,
                state.shot_timer,
                state.surfaced,
                state.enemy_spawn_interval,
                state.enemy_spawn_timer,
                state.diver_spawn_timer,
                state.move_interval,
                state.ramp_index,
            )
        ),
        f_bullets=oldest_first(b.alive, b.x, b.y, b.right),
        divers=oldest_first(d.alive, d.x, d.y, d.right, d.move_timer),
        e_fish=oldest_first(e.alive & ~e.is_sub, e.x, e.y, e.right, e.move_timer),
        e_subs=oldest_first(e.alive & e.is_sub, e.x, e.y, e.right, e.move_timer, e.shot_timer),
        e_bullets=sorted(enemy_bullets),  # a set: duplicate enemy bullets are indistinguishable
    )


def _seaquest_reference_lists(env) -> dict:
    def ints(items):
        return [tuple(int(v) for v in item) for item in items]

    return dict(
        scalars=tuple(
            int(v)
            for v in (
                env.sub_x,
                env.sub_y,
                env.sub_or,
                env.oxygen,
                env.diver_count,
                env.shot_timer,
                env.surface,
                env.e_spawn_speed,
                env.e_spawn_timer,
                env.d_spawn_timer,
                env.move_speed,
                env.ramp_index,
            )
        ),
        f_bullets=ints(env.f_bullets),
        divers=ints(env.divers),
        e_fish=ints(env.e_fish),
        e_subs=ints(env.e_subs),
        e_bullets=sorted(set(ints(env.e_bullets))),
    )


def _asterix_draws(env, rng: np.random.RandomState, action: int) -> np.ndarray:
    """Uniforms that make our Asterix spawn what the reference's next `act` will spawn."""
    del action
    draws = np.zeros(_world("asterix").num_draws, np.float32)
    rng.rand()  # Environment.act's sticky-action draw
    if env.spawn_timer == 0:
        right, gold = rng.rand() < 1 / 2, rng.rand() < 1 / 3
        draws[:2] = 0.25 if right else 0.75, 0.1 if gold else 0.9
        free = [i for i, e in enumerate(env.entities) if e is None]
        if free:
            draws[2 + free[rng.randint(len(free))]] = 1.0
    return draws


def _seaquest_draws(env, rng: np.random.RandomState, action: int) -> np.ndarray:
    """Uniforms that make our Seaquest spawn what the reference's next `act` will spawn."""
    del action
    draws = np.full(minatar_seaquest.NUM_DRAWS, 0.5, np.float32)
    rng.rand()  # Environment.act's sticky-action draw
    if env.e_spawn_timer == 0:
        right, sub, row = rng.rand() < 1 / 2, rng.rand() < 1 / 3, rng.randint(low=1, high=9)
        draws[:3] = 0.25 if right else 0.75, 0.1 if sub else 0.9, (row - 0.5) / 8
    if env.d_spawn_timer == 0:
        right, row = rng.rand() < 1 / 2, rng.randint(low=1, high=9)
        draws[3:] = 0.25 if right else 0.75, (row - 0.5) / 8
    return draws


def _freeway_draws(env, rng: np.random.RandomState, action: int) -> np.ndarray:
    """Uniforms that make our Freeway re-draw the car speeds the reference's next `act` will."""
    draws = np.full(_world("freeway").num_draws, 0.5, np.float32)
    rng.rand()  # Environment.act's sticky-action draw
    if action == 2 and env.move_timer == 0 and env.pos == 1:  # about to cross
        speeds, directions = rng.randint(1, 6, 8), rng.rand(8)
        draws[:] = np.concatenate([(speeds - 0.5) / 5, directions])
    return draws


def _breakout_sparse_bricks(env, rng):
    env.brick_map[1:4] = rng.random((3, 10)) < 0.15


def _space_invaders_few_aliens(env, rng):
    env.alien_map[0:4, 2:8] = rng.random((4, 6)) < 0.25
    env.alien_map[rng.integers(4), 2 + rng.integers(6)] = 1
    env.enemy_move_interval = env.alien_move_timer = int(rng.integers(7, 13))


def _asterix_crowded(env, rng):
    env.spawn_speed = env.spawn_timer = int(rng.integers(1, 4))
    env.move_speed = env.move_timer = int(rng.integers(1, 4))
    env.ramp_timer = int(rng.integers(0, 20))
    env.ramp_index = int(rng.integers(0, 10))


def _seaquest_crowded(env, rng):
    env.e_spawn_speed = int(rng.integers(2, 5))
    env.e_spawn_timer = 0
    env.move_speed = int(rng.integers(2, 4))
    env.ramp_index = int(rng.integers(0, 10))
    env.d_spawn_timer = int(rng.integers(0, 10))
    env.diver_count = int(rng.integers(0, 7))
    env.oxygen = int(rng.integers(30, 201))


def _seaquest_scene(fish=(), subs=(), bullets=(), divers=(), carried=0):
    """A hand-set Seaquest state: the player's sub at (3, 8), its gun cooling down."""

    def tweak(env, rng):
        del rng
        env.sub_x, env.sub_y, env.surface, env.shot_timer = 3, 8, False, 5
        env.e_fish, env.e_subs = [list(f) for f in fish], [list(s) for s in subs]
        env.f_bullets, env.divers = [list(b) for b in bullets], [list(d) for d in divers]
        env.diver_count = carried

    return tweak


# Seaquest rules that depend on list order, each happening on the scene's first step. Entities
# are (x, y, moving right, move timer[, shot timer]), bullets (x, y, moving right).
_SEAQUEST_SCENES = (
    # A bullet kills the first fish in the list on its cell, before any sub there.
    _seaquest_scene(fish=[(6, 3, 0, 3), (6, 3, 0, 4)], subs=[(6, 3, 0, 2, 7)], bullets=[(5, 3, 1)]),
    # Two subs move onto one bullet: the newest (processed first) dies.
    _seaquest_scene(subs=[(5, 4, 1, 0, 5), (5, 4, 1, 0, 6)], bullets=[(7, 4, 0)]),
    # A sub moves onto two bullets: the first in the list dies with it.
    _seaquest_scene(subs=[(5, 5, 1, 0, 5)], bullets=[(5, 5, 1), (7, 5, 0)]),
    # A sub shot on its move still fires its due shot.
    _seaquest_scene(subs=[(5, 6, 1, 0, 0)], bullets=[(7, 6, 0)]),
    # Two divers on the sub with room for one: the newest is rescued, the other swims on.
    _seaquest_scene(divers=[(3, 8, 1, 2), (3, 8, 0, 3)], carried=5),
)


def _noop(env, rng, num_actions):
    del env, rng, num_actions
    return 0


def _random(env, rng, num_actions):
    del env
    return int(rng.integers(num_actions))


def _seaquest_policy(env, rng, num_actions):
    """Random, but firing instead of surfacing without divers (which would end the game at once)."""
    action = int(rng.integers(num_actions))
    if action == 2 and env.sub_y == 1 and env.diver_count == 0:
        return 5
    return action


def _freeway_policy(env, rng, num_actions):
    del env
    return int(rng.choice(num_actions, p=(0.25, 0.6, 0.15)))


# game -> (state converter, draws predictor or None, [(seed, steps, start tweak or None, policy)])
_REFERENCE_RUNS = {
    "breakout": (
        _breakout_state,
        None,
        [(1, 600, None, _random), (2, 600, _breakout_sparse_bricks, _random)],
    ),
    "space_invaders": (
        _space_invaders_state,
        None,
        [(1, 800, None, _random), (2, 800, _space_invaders_few_aliens, _random)],
    ),
    "freeway": (
        _freeway_state,
        _freeway_draws,
        [(1, FREEWAY_TIME_LIMIT + 60, None, _freeway_policy)],
    ),
    "asterix": (
        _asterix_state,
        _asterix_draws,
        [(1, 600, None, _random), (2, 600, _asterix_crowded, _random)],
    ),
    "seaquest": (
        _seaquest_state,
        _seaquest_draws,
        [(1, 700, None, _seaquest_policy), (2, 1200, _seaquest_crowded, _seaquest_policy)]
        + [(3, 3, scene, _noop) for scene in _SEAQUEST_SCENES],
    ),
}


@functools.cache
def _roll_reference(game: str):
    """Reference transitions: our copy of each state, the action, the draws and what followed."""
    to_state, predict_draws, runs = _REFERENCE_RUNS[game]
    template, info = _template(game), GAMES[game]
    records = {k: [] for k in ("state", "obs", "action", "draws", "next_obs", "reward", "terminal")}
    records["next_state"] = []
    for seed, steps, tweak, policy in runs:
        ref, rng = _reference(game, seed), np.random.default_rng(seed)
        if tweak:
            tweak(ref.env, rng)
        for _ in range(steps):
            env = ref.env
            records["state"].append(to_state(env, template))
            records["obs"].append(ref.state())
            action = policy(env, rng, len(info.minimal_actions))
            records["action"].append(action)
            full_action = info.minimal_actions[action]
            if predict_draws:
                draws = predict_draws(env, copy.deepcopy(ref.random), full_action)
            else:
                draws = np.zeros(1)
            records["draws"].append(draws)
            reward, terminal = ref.act(full_action)
            records["next_obs"].append(ref.state())
            records["reward"].append(reward)
            records["terminal"].append(terminal)
            records["next_state"].append(
                _seaquest_reference_lists(env) if game == "seaquest" else to_state(env, template)
            )
            if terminal:
                ref.reset()
                if tweak:
                    tweak(ref.env, rng)
    stacked = {k: np.stack(v) for k, v in records.items() if k not in ("state", "next_state")}
    stacked["state"] = jax.tree.map(lambda *xs: np.stack(xs), *records["state"])
    return stacked, records["next_state"]


def _ours(world, states, actions, draws):
    """Our observations of the copied states, and our transitions from them (next state, obs,
    reward, terminated); one compile."""
    if hasattr(world, "transition"):
        step = world.transition
    else:  # no randomness in the compared steps, any key does
        keys = jax.random.split(jax.random.key(0), len(actions))
        step = lambda state, action, i: world._step(state, action, keys[i])
        draws = np.arange(len(actions))

    @jax.jit
    def run(states, actions, draws):
        return jax.vmap(world.observe)(states), jax.vmap(step)(states, actions, draws)

    return jax.device_get(run(states, actions, draws))


@pytest.mark.parametrize("game", GAME_NAMES)
def test_transitions_match_reference(game):
    """Exact observation of each copied state, and exact next observation, reward, terminal flag
    and next game state after every reference step."""
    world = _world(game)
    data, next_states = _roll_reference(game)
    assert data["terminal"].any(), "no episode ended: terminal steps untested"
    assert data["reward"].any(), "no reward: scoring untested"
    observed, (states, obs, reward, terminal) = _ours(
        world, data["state"], data["action"].astype(np.int32), data["draws"]
    )
    np.testing.assert_array_equal(observed, data["obs"], err_msg=f"{game}: observation of a state")
    np.testing.assert_array_equal(reward, data["reward"].astype(np.float32))
    np.testing.assert_array_equal(terminal, data["terminal"])
    differs = (obs != data["next_obs"]).any(axis=(1, 2, 3))
    if differs.any():
        i = np.argmax(differs)
        channels = np.flatnonzero((obs[i] != data["next_obs"][i]).any(axis=(0, 1)))
        pytest.fail(f"{game} step {i}: next observation differs in channels {channels}")

    if game == "seaquest":
        for i, theirs in enumerate(next_states):
            ours = jax.tree.map(lambda x, i=i: x[i], states)
            assert _seaquest_lists(ours) == theirs, f"seaquest step {i}"
        return
    theirs = jax.tree.map(lambda *xs: np.stack(xs), *next_states)
    if game == "asterix":
        states, theirs = _asterix_canonical(states), _asterix_canonical(theirs)
    for name in states.__dataclass_fields__:
        if name in ("time", "terminal"):  # gymnax's step counter; the flag is compared above
            continue
        np.testing.assert_array_equal(
            getattr(states, name), getattr(theirs, name), err_msg=f"{game}: next {name}"
        )


def test_seaquest_reference_runs_reach_hard_cases():
    """The Seaquest reference runs above cover the rules that depend on list order and rescue."""
    data, next_states = _roll_reference("seaquest")
    most_enemies = max(len(s["e_fish"]) + len(s["e_subs"]) for s in next_states)
    assert most_enemies >= 8
    assert any(s["e_bullets"] for s in next_states)
    assert (data["reward"] >= 1).sum() >= 5  # enemies shot or divers rescued
    # The reference's diver count drops below 0 after a full rescue.
    assert min(s["scalars"][4] for s in next_states) < 0


def test_sticky_actions_repeat_the_previous_action_with_the_given_probability():
    """`sticky_action_prob` (the reference's `Environment.act`): each step the taken action is the
    previous taken one with probability p, else the agent's; the game steps with the taken one.
    At 0 the world is the plain game, so its random stream and every result are unchanged."""
    from worlds.errors import WorldOptionError
    from worlds.minatar import StickyActions

    plain = worlds.make("minatar/breakout")
    assert type(worlds.make("minatar/breakout", sticky_action_prob=0.0)) is type(plain)
    with pytest.raises(WorldOptionError, match=r"sticky_action_prob must be in \[0, 1\), got 1"):
        worlds.make("minatar/breakout", sticky_action_prob=1.0)
    p, n, steps = 0.3, 64, 64
    world = worlds.make("minatar/breakout", sticky_action_prob=p)
    assert isinstance(world, StickyActions) and world.spec == plain.spec

    def rollout(key):
        state, _ = jax.vmap(world.reset)(jax.random.split(key, n))

        def body(state, key):
            a_key, s_key = jax.random.split(key)
            asked = jax.random.randint(a_key, (n,), 0, world.spec.num_actions)
            keys = jax.random.split(s_key, n)
            new, _ = jax.vmap(world.step)(state, asked, keys)
            # one transition by hand: the taken action, and the inner game stepped with it
            game_key = jax.vmap(lambda k: jax.random.split(k)[0])(keys)  # `_advance`'s split
            (_, taken), obs, _, _ = jax.vmap(world._step)(state.game, asked, game_key)
            inner = jax.vmap(lambda g, a, k: plain._step(g, a, jax.random.split(k)[1])[1])(
                state.game[0], taken, game_key)
            return new, (state.game[1], asked, taken, (inner == obs).all())

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1]

    last, asked, taken, same_step = map(np.asarray, jax.jit(rollout)(jax.random.key(0)))
    assert (last[0] == 0).all()  # an episode starts with no-op as the action to repeat
    assert same_step.all()
    assert ((taken == asked) | (taken == last)).all()
    differ = asked != last  # where a sticky step shows
    share = (taken[differ] == last[differ]).mean()
    se = np.sqrt(p * (1 - p) / differ.sum())
    assert abs(share - p) < 4 * se, (share, differ.sum())
