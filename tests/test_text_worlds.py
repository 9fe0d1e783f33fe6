"""Text adventures (`text/coin`, `text/quest`) and the token encoder that reads them."""

import functools
import hashlib
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import worlds
from dreamer import config as config_lib
from dreamer.networks import TokenEncoder, WorldModel, make_model
from worlds.text import VOCABULARY
from worlds.text.adventure import TOKEN, AdventureState, _first_ranks, _pick, solve

NAMES = ["text/coin", "text/quest"]
ROLLOUT_BATCH = 256


@functools.cache
def _world(name: str, **options):
    """One world and its jitted reset, step and batched reset, shared by the tests (each jitted
    function compiles once per session)."""
    world = worlds.make(name, **options)
    return world, jax.jit(world.reset), jax.jit(world.step), jax.jit(jax.vmap(world.reset))


@functools.cache
def _random_rollout(name: str, **options):
    """Uniform play over the valid commands: ROLLOUT_BATCH copies for 3 episode lengths.

    Returns (TimeSteps after each step, the states before each step, the TimeSteps before each
    step, the actions), all stacked over [steps, batch], as numpy.
    """
    world = _world(name, **options)[0]
    batch, steps = ROLLOUT_BATCH, 3 * world.spec.max_episode_steps

    @jax.jit
    def run(key):
        state, ts = jax.vmap(world.reset)(jax.random.split(key, batch))

        def body(carry, key):
            state, ts = carry
            a_key, s_key = jax.random.split(key)
            action = jax.random.categorical(a_key, jnp.where(ts.action_mask, 0.0, -jnp.inf))
            new_state, new_ts = jax.vmap(world.step)(state, action, jax.random.split(s_key, batch))
            return (new_state, new_ts), (new_ts, state, ts, action)

        _, out = jax.lax.scan(body, (state, ts), jax.random.split(key, steps))
        return out

    return jax.tree.map(np.asarray, run(jax.random.key(0)))


def _random_success_rate(name: str, **options) -> float:
    """Fraction of the random rollout's first episodes that earn reward 1 (time limit included)."""
    ts = _random_rollout(name, **options)[0]
    first_end = np.argmax(ts.terminated | ts.truncated, axis=0)  # every copy ends by the limit
    return float((ts.reward[first_end, np.arange(ROLLOUT_BATCH)] >= 1.0).mean())


@pytest.mark.parametrize("name", NAMES)
def test_smoke_episode_under_scan(name):
    world = _world(name)[0]
    spec = world.spec
    assert spec.observation_kind == "tokens" and spec.has_action_mask
    assert world.vocabulary[0] == "<pad>" and len(spec.action_names) == spec.num_actions
    ts, states, _, _ = _random_rollout(name)
    obs = ts.observation
    assert obs.shape[1:] == (ROLLOUT_BATCH, *spec.observation_shape) and obs.dtype == np.int32
    assert obs.min() >= 0 and obs.max() < len(world.vocabulary)
    assert np.all((obs != 0).sum(-1) > 8)  # every observation says something
    assert set(np.unique(ts.reward)) <= {0.0, 1.0} and ts.reward.sum() > 0
    # reward 1 exactly on the winning (terminal) step; the rest end by the time limit
    np.testing.assert_array_equal(ts.reward == 1.0, ts.terminated)
    assert ts.truncated.any()
    assert ts.action_mask.any(-1).all()  # some command is always valid
    assert np.all(states.step_count < spec.max_episode_steps)


@pytest.mark.parametrize("name", NAMES)
def test_step_compiles_once(name):
    chex.clear_trace_counter()
    world = _world(name)[0]
    step = jax.jit(chex.assert_max_traces(world.step, n=1))
    state, ts = _world(name)[1](jax.random.key(0))
    for i in range(6):
        state, ts = step(state, jnp.int32(i % world.spec.num_actions), jax.random.key(i))


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_keys_and_determinism_per_key(name):
    world, reset, _, batch_reset = _world(name)
    keys = jax.random.split(jax.random.key(7), 6)
    states, ts = batch_reset(keys)
    for i in (0, 3, 5):
        again, ts_one = reset(keys[i])
        np.testing.assert_array_equal(ts_one.observation, ts.observation[i])
        chex.assert_trees_all_equal(again, jax.tree.map(lambda x, i=i: x[i], states))
    # different keys give different maps (names, exits) and different starting texts
    exits = np.asarray(states.game.exits).reshape(6, -1)
    assert len({row.tobytes() for row in exits}) > 3
    assert len({row.tobytes() for row in np.asarray(ts.observation)}) > 3


@pytest.mark.parametrize(("name", "digest"), [("text/coin", "bfb2724ec9c04f2d"),
                                             ("text/quest", "5c6d664e268fb880")])
def test_generated_adventures_are_the_measured_ones(name, digest):
    """The first 64 adventures of key 0, bit for bit, as generated when the README's text results
    were measured: a change to the generator changes every world and must be deliberate."""
    world, _, _, batch_reset = _world(name)
    state, ts = batch_reset(jax.random.split(jax.random.key(0), 64))
    leaves = jax.tree.leaves((state.game, ts.observation))
    got = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in leaves)).hexdigest()[:16]
    assert got == digest


def test_generator_choices_match_their_definitions():
    u = jax.random.uniform(jax.random.key(0), (500, 20))
    u = u.at[:, 3].set(u[:, 7])  # ties go in index order, as in a stable sort
    np.testing.assert_array_equal(jax.vmap(lambda x: _first_ranks(x, 6))(u),
                                  np.argsort(np.asarray(u), axis=-1, kind="stable")[:, :6])
    allowed = jnp.asarray([True, False, True, True, False])
    draws = jax.vmap(lambda x: _pick(allowed, x))(jax.random.uniform(jax.random.key(1), (30000, 5)))
    share = np.bincount(np.asarray(draws), minlength=5) / 30000
    # 3 sigma of a sampled share at p = 1/3, n = 30,000: 3 x sqrt(p (1 - p) / 30000) = 0.0082
    np.testing.assert_allclose(share, [1 / 3, 0, 1 / 3, 1 / 3, 0], atol=0.0082)


def _state(world, **fields) -> AdventureState:
    """A hand-made single state (unset fields: nothing carried, nothing visited, no door)."""
    R, n = world.rooms, len(world.items)
    names = [TOKEN[w] for w in ("kitchen", "hallway", "cellar", "attic", "pantry", "study")[:R]]
    base = dict(
        room_names=jnp.asarray(names, jnp.int32), exits=jnp.full((R, 4), -1, jnp.int32),
        room=jnp.int32(0), visited=jnp.zeros((R,), bool), walked=jnp.zeros((R, 4), bool),
        entry=jnp.full((R,), -1, jnp.int32), item_room=jnp.full((n,), -1, jnp.int32),
        carried=jnp.zeros((n,), bool), door_room=jnp.int32(-1), door_direction=jnp.int32(0),
        door_open=jnp.zeros((), bool),
    )
    base.update({k: jnp.asarray(v) for k, v in fields.items()})
    return AdventureState(**base)


def test_render_hand_checked_cases():
    coin = worlds.make("text/coin", rooms=3)
    step = jax.jit(coin._step)
    # kitchen(0) -north-> hallway(1), kitchen -west-> cellar(2); the coin lies in the cellar
    exits = np.full((3, 4), -1)
    exits[0, 0], exits[1, 1], exits[0, 3], exits[2, 2] = 1, 0, 2, 0
    s = _state(coin, exits=exits, visited=[True, False, False], item_room=[2])
    texts, masks = [coin.render(coin.observe(s))], []
    for action in (0, 1, 3):  # north, back south, west
        s, obs, reward, _ = step(s, jnp.int32(action), jax.random.key(0))
        texts.append(coin.render(obs))
        masks.append(np.asarray(coin._action_mask(s)))
        assert float(reward) == 0.0
    assert texts == [
        "You are in the kitchen. Exits: north, west. Inventory: nothing.",
        "You are in the hallway. Exits: south (way back). Inventory: nothing.",
        "You are in the kitchen. Exits: north (explored), west. Inventory: nothing.",
        "You are in the cellar. Exits: east (way back). You see a coin. Inventory: nothing.",
    ]
    np.testing.assert_array_equal(masks[-1], [0, 0, 1, 0, 1])
    s, obs, reward, terminated = step(s, jnp.int32(4), jax.random.key(0))
    assert float(reward) == 1.0 and bool(terminated)

    quest = worlds.make("text/quest", rooms=3)
    # hallway(1) has a locked door east to cellar(2); the player came up from the kitchen(0)
    exits = np.full((3, 4), -1)
    exits[1, 1], exits[0, 0], exits[1, 2], exits[2, 3] = 0, 1, 2, 1
    walked = np.zeros((3, 4), bool)
    walked[0, 0] = walked[1, 1] = True
    s = _state(quest, exits=exits, room=1, visited=[True, True, False], walked=walked,
               entry=[-1, 1, -1], item_room=[1, 2], door_room=1, door_direction=2)
    assert quest.render(quest.observe(s)) == (
        "You are in the hallway. Exits: south (way back). You see a key. A locked door leads "
        "east. Inventory: nothing."
    )
    np.testing.assert_array_equal(np.asarray(quest._action_mask(s)), [0, 1, 0, 0, 1, 0, 1])
    s = s.replace(carried=jnp.asarray([True, False]), item_room=jnp.asarray([-1, 2]),
                  door_open=jnp.asarray(True))
    assert quest.render(quest.observe(s)) == (
        "You are in the hallway. Exits: south (way back), east. An open door leads east. "
        "Inventory: key."
    )
    np.testing.assert_array_equal(np.asarray(quest._action_mask(s)), [0, 1, 1, 0, 0, 0, 0])


def _expected_mask(world, game) -> np.ndarray:
    """The valid commands, re-derived in numpy from the true state."""
    room = int(game.room)
    exits = np.asarray(game.exits)[room] >= 0
    if world.door and int(game.door_room) == room and not bool(game.door_open):
        exits[int(game.door_direction)] = False
    items = (np.asarray(game.item_room) == room) & ~np.asarray(game.carried)
    mask = [*exits, *items]
    if world.door:
        mask.append(int(game.door_room) == room and not bool(game.door_open))
    return np.asarray(mask, bool)


@pytest.mark.parametrize("name", NAMES)
def test_action_mask_matches_the_state(name):
    world = _world(name)[0]
    _, states, ts, _ = _random_rollout(name)
    for t in range(0, ts.observation.shape[0], 5):
        for b in range(0, ROLLOUT_BATCH, 37):
            game = jax.tree.map(lambda x, t=t, b=b: x[t, b], states.game)
            np.testing.assert_array_equal(ts.action_mask[t, b], _expected_mask(world, game))
            # the text names exactly the exits the mask allows
            text = world.render(ts.observation[t, b])
            listed = text.split("Exits: ")[1].split(".")[0]
            for d, direction in enumerate(("north", "south", "east", "west")):
                assert (direction in listed) == ts.action_mask[t, b, d], (text, ts.action_mask[t, b])


@pytest.mark.parametrize("name", NAMES)
def test_scripted_solver_wins_every_seed(name):
    world, reset, step, _ = _world(name)
    lengths = []
    for seed in range(40):
        state, ts = reset(jax.random.key(seed))
        plan = solve(world, state.game)
        assert plan is not None and len(plan) <= world.spec.max_episode_steps
        for i, action in enumerate(plan):
            assert bool(ts.action_mask[action]), (seed, world.render(ts.observation))
            state, ts = step(state, jnp.int32(action), jax.random.key(i))
            assert float(ts.reward) == (1.0 if i == len(plan) - 1 else 0.0)
        assert bool(ts.terminated)
        lengths.append(len(plan))
    assert np.mean(lengths) > 2  # the goal is not just lying at the start


def test_random_policy_success_is_clearly_below_one():
    coin, quest = _random_success_rate("text/coin"), _random_success_rate("text/quest")
    print(f"random (valid commands) success: coin {coin:.3f}, quest {quest:.3f}")
    assert 0.3 < coin < 0.8
    assert 0.1 < quest < 0.7


def _reachable(exits: np.ndarray) -> int:
    seen, frontier = {0}, [0]
    while frontier:
        room = frontier.pop()
        for nxt in exits[room]:
            if nxt >= 0 and int(nxt) not in seen:
                seen.add(int(nxt))
                frontier.append(int(nxt))
    return len(seen)


def test_rooms_option_grows_a_connected_map():
    for rooms in (2, 9, 20):
        world, _, _, batch_reset = _world("text/coin", rooms=rooms)
        assert world.spec.max_episode_steps == 3 * rooms
        states, _ = batch_reset(jax.random.split(jax.random.key(rooms), 8))
        exits = np.asarray(states.game.exits)
        assert exits.shape == (8, rooms, 4)
        for b in range(8):
            assert _reachable(exits[b]) == rooms
            # passages are two-way: going d then the opposite direction returns
            for room, d in zip(*np.nonzero(exits[b] >= 0), strict=True):
                assert exits[b, exits[b, room, d], [1, 0, 3, 2][d]] == room
        names = np.asarray(states.game.room_names)
        assert all(len(set(row)) == rooms for row in names)
    with pytest.raises(ValueError, match="rooms"):
        worlds.make("text/coin", rooms=1)
    with pytest.raises(worlds.WorldOptionError):
        worlds.make("text/quest", size=3)


def test_quest_treasure_only_behind_the_door():
    world, _, _, batch_reset = _world("text/quest")
    states, _ = batch_reset(jax.random.split(jax.random.key(3), 32))
    g = jax.tree.map(np.asarray, states.game)
    R = world.rooms
    for b in range(32):
        assert g.item_room[b, 1] == R - 1 and g.item_room[b, 0] != R - 1 and g.room[b] != R - 1
        assert (g.exits[b, R - 1] >= 0).sum() == 1  # one way in
        assert g.exits[b, g.door_room[b], g.door_direction[b]] == R - 1


# --- the agent side: the token encoder -----------------------------------------------------------


def test_token_encoder_is_chosen_for_token_worlds_and_gives_finite_latents():
    cfg = config_lib.tiny().model
    world, _, _, batch_reset = _world("text/quest")
    model = make_model(cfg, world.spec)
    assert model.tokens and not model.image
    _, ts = batch_reset(jax.random.split(jax.random.key(0), 6))
    ts = jax.tree.map(lambda x: x[:5], ts)
    params = jax.jit(model.init)(jax.random.key(1), ts.observation, jnp.zeros((5,), jnp.int32))
    assert "Embed_0" in params["params"]["stem"]  # the TokenEncoder is the stem
    represent = jax.jit(lambda p, o: model.apply(p, o, method=WorldModel.represent))
    latent = represent(params, ts.observation)
    assert latent.shape == (5, cfg.latent_dim)
    assert np.all(np.isfinite(latent)) and latent.min() >= 0.0 and latent.max() <= 1.0 + 1e-6
    # distinct texts give distinct latents; an all-padding input stays finite
    assert np.abs(np.asarray(latent[0] - latent[1])).max() > 1e-4
    blank = represent(params, jnp.zeros((5, *world.spec.observation_shape), jnp.int32))
    assert np.all(np.isfinite(blank))
    with pytest.raises(ValueError, match="tokens"):
        make_model(config_lib.override(config_lib.tiny(), ["model.encoder=conv"]).model, world.spec)


def test_token_encoder_ignores_padding_and_handles_large_ids():
    encoder = TokenEncoder(features=8, out=4)
    tokens = jnp.asarray([[3, 5, 7, 0, 0, 0]])
    params = encoder.init(jax.random.key(0), tokens)
    out = encoder.apply(params, tokens)
    # padding contributes nothing: changing the embedding of id 0 changes no output
    table = params["params"]["Embed_0"]["embedding"]
    moved = jax.tree.map(lambda x: x, params)
    moved["params"]["Embed_0"]["embedding"] = table.at[0].set(100.0)
    np.testing.assert_allclose(encoder.apply(moved, tokens), out, rtol=1e-6)
    # ... while a real token does
    assert np.abs(np.asarray(encoder.apply(params, tokens.at[0, 1].set(9)) - out)).max() > 1e-6
    big = encoder.apply(params, jnp.asarray([[100_000, 5, 7, 0, 0, 0]]))
    assert np.all(np.isfinite(big))


@pytest.mark.xdist_group("tiny_coin")  # reads the replay of the text/coin learning run
def test_collect_never_chooses_a_masked_command(tiny_coin_run):
    """Over all 1,536 real steps of the tiny text/coin run (its restored replay), every chosen
    command was valid and the search policy put no weight on a masked one."""
    from dreamer.config import config_from_dict
    from dreamer.train import Trainer

    cfg = config_from_dict(json.load(open(os.path.join(tiny_coin_run, "config.json"))))
    trainer = Trainer(cfg, tiny_coin_run, resume=True)  # the run's programs, already compiled
    trainer.checkpointer.close()
    replay = trainer.replay
    filled = np.asarray(replay.global_index) >= 0  # [capacity] rows written
    assert filled.sum() * replay.rows.action.shape[1] == 1536
    mask = np.asarray(replay.rows.action_mask)[filled]
    action = np.asarray(replay.rows.action)[filled]
    chosen = np.take_along_axis(mask, action[..., None], -1)[..., 0]
    assert chosen.all()
    assert (~mask).any()  # the mask did rule commands out along the way
    assert np.all(np.asarray(replay.rows.policy)[filled][~mask] == 0.0)


def test_vocabulary_is_unique():
    assert len(set(VOCABULARY)) == len(VOCABULARY)


@pytest.mark.xdist_group("tiny_coin")  # shares its run with tests/test_play.py
def test_tiny_agent_beats_random_play_on_a_small_coin_map(tiny_coin_run):
    """The `tiny` agent learns text/coin on small maps (conftest.TINY_COIN_OPTIONS) from 1,536
    real steps, in about a minute on 2 CPU cores."""
    from conftest import TINY_COIN_OPTIONS

    random_rate = _random_success_rate("text/coin", **TINY_COIN_OPTIONS)
    assert 0.3 < random_rate < 0.5
    ledger = json.load(open(os.path.join(tiny_coin_run, "ledger.json")))
    assert ledger["config"]["world_options"] == TINY_COIN_OPTIONS  # set through the CLI
    assert ledger["real"]["env_steps"] == 1536 and ledger["eval"]["episodes"] == 200
    success = ledger["eval"]["mean_return"]
    assert success >= random_rate + 0.25, (success, random_rate)


@pytest.mark.parametrize("name", NAMES)
def test_without_marks_the_same_play_shows_no_marks(name):
    """`marks=False` plays the same adventures (same keys, actions: the same rewards, ends and
    masks), and each observation is the marked one with its "( explored )" and "( way back )"
    notes taken out: the walked passages are never shown, so the agent must remember them."""
    marked, unmarked = _random_rollout(name), _random_rollout(name, marks=False)
    for field in ("reward", "terminated", "truncated", "action_mask"):
        np.testing.assert_array_equal(getattr(marked[0], field), getattr(unmarked[0], field))
    np.testing.assert_array_equal(marked[3], unmarked[3])  # the same actions were drawn
    world = _world(name)[0]
    with_marks = marked[0].observation.reshape(-1, world.spec.observation_shape[0])
    without = unmarked[0].observation.reshape(with_marks.shape)
    notes = [f" ({note})" for note in ("explored", "way back")]
    shown = [world.render(o) for o in with_marks[:2000]]
    assert any(note in text for text in shown for note in notes)  # the marked world shows them
    for text, observation in zip(shown, without[:2000], strict=True):
        for note in notes:
            text = text.replace(note, "")
        assert world.render(observation) == text
    assert TOKEN["explored"] not in without and TOKEN["way"] not in without
