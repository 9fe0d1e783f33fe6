"""Real text simulators behind `HostWorld`: TextWorldExpress (`twx/...`) and TextWorld
(`textworld/...`), each checked step by step against the simulator's own Python interface."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from extras import require, require_program
from world_check import check_timestep

import worlds
from worlds.text_tokens import SPECIAL_TOKENS, Vocabulary, tokenize

# one worker runs this file: its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("text_host")


def _check_timestep(ts, world):
    check_timestep(ts, world.spec, world.num_envs)
    assert ts.observation.dtype == np.int32
    assert ((ts.observation >= 0) & (ts.observation < len(world.vocabulary))).all()


def _masked_commands(world, mask):
    return [world.commands[a] for a in np.flatnonzero(mask)]


# --- tokens ---------------------------------------------------------------------------------


def test_tokenizer_and_vocabulary_round_trip():
    assert tokenize("You're in the Kitchen. A coin!") == [
        "you're", "in", "the", "kitchen", ".", "a", "coin", "!"
    ]
    vocab = Vocabulary.from_texts(["a coin.", "the coin"])
    assert vocab.words == [*SPECIAL_TOKENS, ".", "a", "coin", "the"]
    ids = vocab.encode(["the coin.", "a dog"], 8)
    np.testing.assert_array_equal(ids, [6, 5, 3, 2, 4, 1, 0, 0])  # <sep>=2, dog -> <unk>=1
    assert ids.dtype == np.int32
    assert vocab.decode(ids) == "the coin. | a <unk>"
    np.testing.assert_array_equal(vocab.encode(["a a a a"], 2), [4, 4])  # cut to length
    assert vocab.count(["the coin.", "a dog"]) == 6


# --- missing pieces -------------------------------------------------------------------------


def test_missing_text_extra_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "textworld_express", None)  # import now raises ImportError
    with pytest.raises(worlds.MissingExtraError, match=r'pip install -e "\.\[text\]"'):
        worlds.make("twx/coin")
    monkeypatch.setitem(sys.modules, "textworld", None)
    with pytest.raises(worlds.MissingExtraError, match=r'TextWorld.*pip install -e "\.\[text\]"'):
        worlds.make("textworld/game.z8")


def test_missing_java_names_the_fix(monkeypatch):
    require("textworld_express", "the 'text' extra is not installed")
    import worlds.twx as twx

    monkeypatch.setattr(twx.shutil, "which", lambda name: None)
    twx._java_major_version.cache_clear()
    try:
        with pytest.raises(
            worlds.MissingExtraError, match="apt install openjdk-17-jre-headless"
        ):
            worlds.make("twx/coin")
    finally:
        twx._java_major_version.cache_clear()


def test_unknown_twx_game_lists_games():
    with pytest.raises(worlds.UnknownWorldError, match=r"twx/coin\?.*Games: coin, cookingworld"):
        worlds.make("twx/coins")


# --- TextWorldExpress -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def twx():
    """The textworld_express module; the test is skipped where the 'text' extra or Java is
    absent, and fails there under CI (.ci/run installs both, so CI runs these tests)."""
    module = require("textworld_express", "the 'text' extra is not installed")
    require_program("java", "Java is not installed (apt install openjdk-17-jre-headless)")
    return module


@pytest.fixture(scope="module")
def twx_reference(twx):
    """TextWorldExpress's own Python environment (one more JVM), to check the world against."""
    env = twx.TextWorldExpressEnv(envStepLimit=10**6)
    yield env
    env.close()


def _reference_start(env, world, i, gold=False):
    obs, infos = env.reset(
        seed=int(world.game_seeds[i]), gameFold=world.fold, gameName=world.game,
        gameParams=world.params, generateGoldPath=gold,
    )
    return infos


def _reference_observation(world, infos, commands=()):
    """The token ids of TWX's own state `infos`, written out field by field."""
    texts = {
        "task": infos["taskDescription"],
        "history": ", ".join(commands[-4:]),
        "feedback": "" if infos["observation"].strip() == infos["look"].strip()
        else infos["observation"],
        "inventory": infos["inventory"],
        "look": infos["look"],
    }
    fields = [texts[f] for f in ("task", "history", "feedback", "inventory", "look")]
    return Vocabulary(world.vocabulary).encode(fields, world.max_tokens)


def test_twx_spec_and_shapes(twx_reference):
    with worlds.make("twx/coin", num_envs=2) as world:
        spec = world.spec
        assert spec.name == "twx/coin" and world.family == "twx_coin"
        assert spec.observation_kind == "tokens" and spec.observation_dtype == "int32"
        assert spec.observation_shape == (world.max_tokens,)
        assert spec.has_action_mask and spec.max_episode_steps == 100
        assert spec.action_names == tuple(world.commands) == tuple(sorted(world.commands))
        assert {"move north", "take coin", "look around", "inventory"} <= set(world.commands)
        assert tuple(world.vocabulary[:3]) == SPECIAL_TOKENS and "coin" in world.vocabulary
        ts = world.reset(seed=0)
        _check_timestep(ts, world)
        assert not (ts.action_mask.all(axis=1)).any()  # a real mask, not all-valid
        text = world.render(ts.observation[0])
        assert "coin" in text and "kitchen" in text and "|" in text
        assert world.max_tokens >= 272 + 4 * 5  # the family's longest, plus 4 commands of history
        rng = np.random.default_rng(0)
        for _ in range(5):
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in ts.action_mask])
            ts = world.step(actions)
            _check_timestep(ts, world)
        assert world.frames == 10
        with pytest.raises(ValueError, match=r"expected \(2,\)"):
            world.step(np.zeros(3, np.int64))


def test_twx_matches_reference_step_for_step(twx_reference):
    """Observation, mask (TWX's sorted validActions), reward and ends equal TWX's own env's, across
    a won episode (the gold path), a truncated one (random valid commands) and their auto-resets."""
    env = twx_reference
    limit = 30
    with worlds.make("twx/coin", max_episode_steps=limit) as world:
        ts = world.reset(seed=5)
        ends, gold_length = [], None
        for _episode in range(2):
            gold = None
            for _try in range(10):  # TWX's gold paths for coin are random walks: take a short one
                infos = _reference_start(env, world, 0, gold=True)
                if ends or len(env.getGoldActionSequence()) < limit:
                    gold = None if ends else env.getGoldActionSequence()
                    break
            np.testing.assert_array_equal(ts.observation[0], _reference_observation(world, infos))
            assert _masked_commands(world, ts.action_mask[0]) == sorted(infos["validActions"])
            if gold is not None:
                gold_length = len(gold)
            rng = np.random.default_rng(1)
            taken = []
            for t in range(limit):
                if gold is not None:
                    command = gold[t]
                else:  # anything but taking the coin, so the time limit ends the episode
                    options = _masked_commands(world, ts.action_mask[0])
                    command = rng.choice([c for c in options if c != "take coin"])
                ts = world.step(np.array([world.commands.index(command)]))
                _, reward, _, infos = env.step(command)
                taken.append(str(command))
                assert ts.reward[0] == np.float32(reward) and reward == (command == "take coin")
                won = infos["tasksuccess"]
                assert ts.terminated[0] == (won or infos["taskfailure"])
                assert world.success[0] == won
                if ts.terminated[0] or ts.truncated[0]:
                    ends.append((bool(ts.terminated[0]), bool(ts.truncated[0]), t + 1))
                    break
                np.testing.assert_array_equal(
                    ts.observation[0], _reference_observation(world, infos, taken)
                )
                assert _masked_commands(world, ts.action_mask[0]) == sorted(infos["validActions"])
        # the gold path wins (reward 1, terminated); random commands are cut at the limit
        assert ends == [(True, False, gold_length), (False, True, limit)]
        assert world.unlisted_commands == set()


def test_twx_copies_are_independent_and_deterministic(twx):
    """Copy i of a world reset with seed s plays what a one-copy world reset with s + i plays."""

    def play(num_envs, seed, steps=15):
        with worlds.make("twx/coin", num_envs=num_envs) as world:
            ts = world.reset(seed=seed)
            out = [ts.observation.copy()]
            seeds = [world.game_seeds.copy()]
            for t in range(steps):
                # the first valid command in id order, shifted by t: deterministic, varied
                actions = np.array([np.flatnonzero(m)[t % m.sum()] for m in ts.action_mask])
                ts = world.step(actions)
                out.append(ts.observation.copy())
            return np.stack(out, 1), np.stack(seeds, 1)

    both, seeds = play(2, 7)
    first, _ = play(1, 7)  # another world (and JVM) with the same seed: determinism
    second, _ = play(1, 8)
    np.testing.assert_array_equal(both[0], first[0])
    np.testing.assert_array_equal(both[1], second[0])
    assert seeds[0, 0] != seeds[1, 0] and not np.array_equal(both[0], both[1])


def test_twx_folds_draw_their_own_seeds(twx):
    observations = {}
    for fold, (low, high) in {"train": (0, 999), "dev": (10000, 10999), "test": (20000, 20999)}.items():
        with worlds.make("twx/coin", num_envs=2, fold=fold) as world:
            ts = world.reset(seed=0)
            assert ((world.game_seeds >= low) & (world.game_seeds <= high)).all()
            observations[fold] = ts.observation
    assert not np.array_equal(observations["train"], observations["dev"])
    assert not np.array_equal(observations["dev"], observations["test"])
    with pytest.raises(worlds.WorldOptionError, match="fold must be one of train, dev, test"):
        worlds.make("twx/coin", fold="valid")


def test_twx_game_options_and_cached_family(tmp_path, monkeypatch, twx):
    from worlds.text_tokens import read_family, write_family
    from worlds.twx import build_family, game_params_string

    assert game_params_string("numLocations=5", include_doors=False, num_distractor_items=2) == (
        "includeDoors=0,numDistractorItems=2,numLocations=5"
    )
    assert game_params_string("numLocations=5", numLocations=3) == "numLocations=3"
    with pytest.raises(worlds.WorldOptionError, match="Unrecognized property name"):
        worlds.make("twx/coin", num_rooms=3)
    # A family for non-default options is built once and read from the cache afterwards; here a
    # small one (3 games per fold) is put in a fresh cache so the test does not build the full one.
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path))
    params = "includeDoors=0,numLocations=3"
    family = build_family("coin", params, seeds_per_fold=3, verbose=False)
    assert family["commands"] == sorted(family["commands"]) and "take coin" in family["commands"]
    write_family("twx_coin-includeDoors=0-numLocations=3", family)
    assert read_family("twx_coin-includeDoors=0-numLocations=3") == json.loads(json.dumps(family))
    with worlds.make("twx/coin", num_locations=3, include_doors=False, num_envs=2) as world:
        assert world.family == "twx_coin-includeDoors=0-numLocations=3"
        assert world.commands == family["commands"]
        assert not any("door" in c for c in world.commands)
        _check_timestep(world.reset(seed=0), world)


def test_twx_close_stops_the_jvm(twx):
    world = worlds.make("twx/coin", num_envs=2)
    process = world._engine.process
    world.reset(seed=0)
    assert process.poll() is None
    world.close()
    assert process.poll() is not None  # exited
    with pytest.raises(RuntimeError, match="closed"):
        world.step(np.zeros(2, np.int64))
    world.close()  # twice is fine


def test_the_twx_preset_trains_through_the_trainer_with_exact_counts(twx, tmp_path):
    """The `twx` preset's path through `Trainer` on twx/coin (the preset `dreamer train --world
    twx/coin` picks): the TextWorldExpress host collector, the token encoder, Gumbel search, and
    evaluation on the test fold's games by sampling the search policy at T = 1; sizes cut to a
    toy, so it asserts exact counts, not learning. 2 copies x 4 steps = 8 real steps an
    iteration; 32 steps = 4 iterations; each iteration from the one that reaches
    learning_starts=16 on (at 16, 24 and 32) earns one phase of 0.5 x 8 = 4 updates: 12."""
    import json

    from dreamer import config as config_lib
    from dreamer.train import Trainer

    assert config_lib.default_preset("twx/coin") == "twx"
    cfg = config_lib.override(config_lib.twx(), [
        "world=twx/coin", "run.real_steps=32", "run.num_envs=2", "run.collect_steps=4",
        "train.learning_starts=16", "run.eval_interval=32", "run.eval_episodes=2",
        "run.checkpoint_interval=32", "train.batch_size=8", "search.num_simulations=2",
        "model.hidden=16", "model.latent_dim=8", "model.channels=8"])
    assert (cfg.search.algorithm, cfg.run.eval_temperature) == ("gumbel", 1.0)  # the preset's
    ledger = Trainer(cfg, str(tmp_path)).run(progress=False)
    S, B, K = 2, 8, cfg.train.unroll_steps
    reanalysed = round(cfg.train.reanalyse_fraction * B)
    assert (ledger.env_steps, ledger.updates) == (32, 12)
    assert ledger.search == 32 * S and ledger.unroll == 12 * B * K
    assert ledger.reanalyse == 12 * reanalysed * (K + 1) * S
    data = json.load(open(tmp_path / "ledger.json"))
    assert data["world_settings"]["twx/coin"]["evaluation"]["fold"] == "test"
    assert data["world_settings"]["twx/coin"]["training"]["fold"] == "train"
    rows = [r.split(",") for r in (tmp_path / "eval.csv").read_text().splitlines()[1:]]
    assert [(int(r[0]), int(r[1]), int(r[5])) for r in rows] == [(32, 12, 2)]
    assert 0.0 <= float(rows[0][3]) <= 1.0  # a coin found scores 1


@pytest.mark.parametrize("game", ["cookingworld", "mapreader"])
def test_twx_other_games(game, twx):
    with worlds.make(f"twx/{game}", num_envs=2) as world:
        ts = world.reset(seed=0)
        _check_timestep(ts, world)
        rng = np.random.default_rng(0)
        for _ in range(10):
            ts = world.step(np.array([rng.choice(np.flatnonzero(m)) for m in ts.action_mask]))
            _check_timestep(ts, world)


# --- TextWorld ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def textworld_game(tmp_path_factory):
    """A small TextWorld game with dense rewards (several score points), made once per session."""
    require("textworld", "the 'text' extra is not installed")
    path = tmp_path_factory.mktemp("textworld") / "simple.z8"
    subprocess.run(
        [sys.executable, str(Path(sys.executable).parent / "tw-make"), "tw-simple", "--rewards", "dense",
         "--goal", "detailed", "--seed", "3", "--output", str(path), "--silent"],
        check=True, capture_output=True, timeout=120,
    )
    return path


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """An empty vocabulary cache for this module's TextWorld tests (the first one builds)."""
    path = tmp_path_factory.mktemp("dreamer-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DREAMER_CACHE", str(path))
        yield path


@pytest.mark.filterwarnings("ignore:.*is not fully supported")  # jericho, on the reference env
def test_textworld_rewards_are_score_changes(textworld_game, fresh_cache):
    """Along the walkthrough, each reward is the change of TextWorld's cumulative score and the
    mask holds exactly the sorted admissible commands; the last step wins and auto-resets."""
    import textworld

    reference = textworld.start(
        str(textworld_game),
        request_infos=textworld.EnvInfos(admissible_commands=True, extras=["walkthrough"]),
    )
    gs = reference.reset()
    walkthrough = gs["extra.walkthrough"]
    with worlds.make(f"textworld/{textworld_game}", num_envs=2) as world:
        assert world.spec.observation_kind == "tokens" and world.spec.has_action_mask
        assert world.family.startswith("textworld_")
        assert (fresh_cache / "vocab" / f"{world.family}.json").exists()
        first = world.reset(seed=0)
        _check_timestep(first, world)
        assert _masked_commands(world, first.action_mask[0]) == sorted(gs["admissible_commands"])
        scores, rewards = [0], []
        for t, command in enumerate(walkthrough):
            ts = world.step(np.full(2, world.commands.index(command)))
            _check_timestep(ts, world)
            gs, score, done = reference.step(command)
            scores.append(score)
            rewards.append(ts.reward[0])
            np.testing.assert_array_equal(ts.reward, ts.reward[0])
            last = t == len(walkthrough) - 1
            assert ts.terminated.all() == last and not ts.truncated.any()
            if not last:
                assert _masked_commands(world, ts.action_mask[0]) == sorted(
                    gs["admissible_commands"]
                )
        assert done and world.success.all()
        np.testing.assert_array_equal(rewards, np.diff(scores))
        assert sum(r > 0 for r in rewards) >= 2  # several score points: a real per-step reward
        np.testing.assert_array_equal(ts.observation, first.observation)  # auto-reset
        np.testing.assert_array_equal(ts.action_mask, first.action_mask)
        assert world.unlisted_commands == set()
        assert "|" in world.render(ts.observation[0])
    reference.close()


def test_textworld_truncation_and_close(textworld_game, fresh_cache):
    world = worlds.make(f"textworld/{textworld_game}", max_episode_steps=3)
    first = world.reset(seed=0)
    look = world.commands.index("look")
    n = len(world.commands)
    with pytest.raises(ValueError, match=rf"action {n} out of range \[0, {n}\)"):
        world.step(np.array([n]))  # refused, and not counted as a step
    flags = [world.step(np.array([look])) for _ in range(3)]
    assert [f.truncated[0] for f in flags] == [False, False, True]
    assert "| look, look |" in world.render(flags[1].observation[0])  # the history field
    assert "| look |" not in world.render(first.observation[0])
    np.testing.assert_array_equal(flags[-1].observation, first.observation)
    world.close()
    with pytest.raises(RuntimeError, match="closed"):
        world.step(np.array([look]))


@pytest.mark.parametrize("world", ["twx/coin", "textworld/game.z8"])
def test_text_world_options_are_checked_before_a_game_starts(world):
    """Both text worlds refuse a bad common option with the same message, naming the world."""
    if world.startswith("textworld/"):
        require("textworld", "the 'text' extra is not installed")
    fields = "('task', 'history', 'feedback', 'inventory', 'look')" if world.startswith("twx/") \
        else "('objective', 'history', 'feedback', 'inventory', 'description')"
    for options, message in [
        ({"num_envs": 0}, "num_envs must be >= 1, got 0"),
        ({"max_episode_steps": 0}, "max_episode_steps must be >= 1, got 0"),
        ({"observation_fields": ()}, f"observation_fields must be a non-empty subset of {fields}"),
        ({"observation_fields": ("nope",)}, "observation_fields must be a non-empty subset"),
        ({"history_commands": -1}, "history_commands must be >= 0, got -1"),
    ]:
        with pytest.raises(worlds.WorldOptionError) as error:
            worlds.make(world, **options)
        assert str(error.value).startswith(f"{world}: {message}")


def test_textworld_missing_game_file(tmp_path):
    require("textworld", "the 'text' extra is not installed")
    with pytest.raises(FileNotFoundError, match="tw-make"):
        worlds.make(f"textworld/{tmp_path}/nothing.z8")


def test_twx_left_open_at_exit_stops_its_jvm_silently():
    """A twx world never closed: the interpreter exits cleanly, prints nothing (its JVM used to
    be stopped by a __del__ that ran after `subprocess` was torn down: "Exception ignored ...
    'NoneType' object has no attribute 'TimeoutExpired'"), and leaves no JVM behind."""
    require("textworld_express", "the 'text' extra is not installed")
    require_program("java", "Java is not installed (apt install openjdk-17-jre-headless)")
    script = ("import worlds; w = worlds.make('twx/coin', num_envs=2); w.reset(0); "
              "print(w._engine.process.pid)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    pid = int(done.stdout.split()[-1])
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
