"""Runs at the shipped presets, through `Trainer`, as a user gets them.

Each JAX world family's default preset (`config.default_preset`) runs one short training run built
the way `dreamer train --world W --real-steps R` builds it, changing nothing but the real budget,
so that one learner phase and the final evaluation happen; the ledger counts are checked against a
hand computation from the preset's numbers. Learning at those presets takes far longer than the
suite allows (cartpole: 6k real steps, breakout 50k, text/coin 20k), so these assert exact counts;
the learning assertions for the features they carry (Gumbel search, the planning-free ablation,
sampled evaluation) run on the tiny catch config instead.
"""

import dataclasses
import json
import math

import numpy as np
import pytest

from dreamer import cli
from dreamer import config as config_lib
from dreamer.train import Trainer


def user_config(world: str, real_steps: int) -> config_lib.Config:
    """The config of `dreamer train --world WORLD --real-steps REAL_STEPS`."""
    args = cli._parser().parse_args(["train", "--world", world, "--real-steps", str(real_steps)])
    cfg = cli._build_config(args)
    # it is the world's default preset exactly, but for the world and the real budget
    preset = config_lib.preset(config_lib.default_preset(world))
    assert cfg == dataclasses.replace(preset, world=world,
                                      run=dataclasses.replace(preset.run, real_steps=real_steps))
    return cfg


def read_metrics(out) -> list[dict]:
    with open(out / "metrics.jsonl") as f:
        return [json.loads(line) for line in f]


def read_eval_rows(out) -> list[list[str]]:
    lines = (out / "eval.csv").read_text().splitlines()
    assert lines[0] == "env_steps,updates,simulated,mean_return,std_return,episodes"
    return [line.split(",") for line in lines[1:]]


def check_run(out, ledger, cfg, *, env_steps, updates, search, unroll, reanalyse, learn_rows,
              returns_within, dream=0):
    """The exact ledger, written and returned; one evaluation at the end with the preset's
    episode count; `learn_rows` metric rows with finite losses."""
    assert (ledger.env_steps, ledger.frames, ledger.updates) == (env_steps, env_steps, updates)
    assert (ledger.search, ledger.unroll, ledger.reanalyse) == (search, unroll, reanalyse)
    saved = json.load(open(out / "ledger.json"))
    assert saved["real"] == {"env_steps": env_steps, "frames": env_steps,
                             "episodes": ledger.episodes}
    simulated = saved["simulated"]
    assert (simulated["search"], simulated["reanalyse"], simulated["unroll"]) == (
        search, reanalyse, unroll)
    assert simulated["dream"] == ledger.dream == dream  # buffer-wide reanalysis passes
    assert simulated["total"] == search + reanalyse + unroll + dream
    assert saved["updates"] == updates
    # one evaluation, at the end, of run.eval_episodes episodes
    rows = read_eval_rows(out)
    assert len(rows) == 1
    step, ups, simulated, mean, _, episodes = rows[0]
    assert (int(step), int(ups), int(simulated)) == (env_steps, updates,
                                                     search + reanalyse + unroll + dream)
    assert int(episodes) == cfg.run.eval_episodes == saved["eval"]["episodes"]
    low, high = returns_within
    assert low <= float(mean) <= high and float(mean) == saved["eval"]["mean_return"]
    metrics = read_metrics(out)
    learned = [m for m in metrics if "loss/total" in m]
    assert [m["env_steps"] for m in learned] == learn_rows
    losses = {k: v for m in learned for k, v in m.items() if k.startswith("loss/")}
    assert {"loss/total", "loss/policy", "loss/value", "loss/value_prefix"} <= set(losses)
    assert all(math.isfinite(v) for m in learned for k, v in m.items() if k.startswith("loss/"))


# Wall time, 2 CPU cores shared with other jobs: 49 s with a cold XLA cache, 30 s warm.
def test_cartpole_at_the_small_preset(tmp_path):
    """The README's `dreamer train` (cartpole, `small`: MuZero search, an MLP encoder)."""
    cfg = user_config("cartpole", 448)
    assert config_lib.default_preset("cartpole") == "small"
    ledger = Trainer(cfg, str(tmp_path)).run(progress=False)
    N, C = cfg.run.num_envs, cfg.run.collect_steps  # 8 copies x 8 steps = 64 real steps a phase
    B, K, S = cfg.train.batch_size, cfg.train.unroll_steps, cfg.search.num_simulations
    assert (N, C, B, K, S) == (8, 8, 128, 5, 16)
    assert (cfg.train.learning_starts, cfg.train.train_ratio) == (400, 1.0)
    assert cfg.train.lr_decay_updates == 4_000
    assert cfg.search.q_normalisation == "tree"  # EfficientZero's one min-max over the tree
    # 7 collections (448 steps); the learner starts after the 7th (448 >= 400), one phase of
    # 1.0 x 64 = 64 updates; each reanalyses round(0.99 x 128) = 127 samples at K + 1 = 6
    # positions with 16 simulations each.
    reanalysed = 127
    check_run(tmp_path, ledger, cfg, env_steps=448, updates=64, search=448 * 16,
              unroll=64 * 128 * 5, reanalyse=64 * reanalysed * 6 * 16, learn_rows=[448],
              returns_within=(1, 500))  # cartpole: +1 a step, at most 500 steps


def test_breakout_at_the_minatar_preset(tmp_path):
    """minatar/breakout at `minatar`: Gumbel search and the MLP encoder over the flattened frame,
    at EfficientZero's budget (one update of 128 per 2 real steps), its fresh policy targets from
    the buffer-wide pass right after each target refresh, through Trainer."""
    cfg = user_config("minatar/breakout", 1152)
    assert config_lib.default_preset("minatar/breakout") == "minatar"
    assert cfg.search.algorithm == "gumbel" and cfg.model.encoder == "mlp"
    trainer = Trainer(cfg, str(tmp_path))
    assert not trainer.model.image  # the MLP takes the flattened frame
    ledger = trainer.run(progress=False)
    N, C = cfg.run.num_envs, cfg.run.collect_steps  # 16 copies x 8 steps = 128 a phase
    B, K, S = cfg.train.batch_size, cfg.train.unroll_steps, cfg.search.num_simulations
    assert (N, C, B, K, S) == (16, 8, 128, 5, 16)
    assert (cfg.train.learning_starts, cfg.train.train_ratio) == (1_000, 0.5)
    assert config_lib.updates_per_phase(cfg) == 64  # 0.5 x 128
    t = cfg.train
    assert (t.reanalyse_fraction, t.target_update_interval, t.reanalyse_pass_interval,
            t.reanalyse_pass_rows, t.reanalyse_pass_chunk) == (0.0, 128, 128, 0, 128)
    # 9 collections (1,152 steps). The learner starts after the 8th (1,024 >= 1,000): two phases
    # of 64 updates. Nothing is reanalysed inside an update. The second phase ends at update 128,
    # where the target network refreshes, and the pass then searches every stored row (1,152:
    # 72 rows x 16 streams) in ceil(1,152 / 128) = 9 calls of 128 roots, 16 simulations each.
    check_run(tmp_path, ledger, cfg, env_steps=1152, updates=128, search=1152 * 16,
              unroll=128 * 128 * 5, reanalyse=0, dream=9 * 128 * 16,
              learn_rows=[1024, 1152], returns_within=(0, 1_000))  # breakout: +1 a brick
    (pass_row,) = [m for m in read_metrics(tmp_path) if "reanalyse_pass/chunks" in m]
    assert pass_row["env_steps"] == 1152 and pass_row["reanalyse_pass/chunks"] == 9


# Wall time, 2 CPU cores shared with other jobs: 77 s with a cold XLA cache, 43 s warm.
def test_breakout_with_the_conv_encoder(tmp_path):
    """minatar/breakout with the conv encoder (the `minatar` preset before its network became
    an MLP: 16 channels, one update of 64 per 10 real steps, 25% reanalysed), through Trainer;
    a fractional update credit (0.1 x 128 = 12.8 a phase, 13-update chunks) carried over."""
    cfg = config_lib.override(user_config("minatar/breakout", 1152), [
        "model.encoder=conv", "model.channels=16", "train.batch_size=64",
        "train.train_ratio=0.1", "train.reanalyse_fraction=0.25"])
    trainer = Trainer(cfg, str(tmp_path))
    assert trainer.model.image  # frames reach the conv stack (the MLP flattens them)
    ledger = trainer.run(progress=False)
    assert config_lib.updates_per_phase(cfg) == 13  # round(12.8)
    # 9 collections (1,152 steps). The learner starts after the 8th (1,024 >= 1,000): credit 12.8,
    # short of one 13-update chunk, so nothing is applied (and no metrics row written); after the
    # 9th the credit is 25.6: one chunk of 13 updates. Each reanalyses round(0.25 x 64) = 16
    # samples at 6 positions, 16 simulations each.
    reanalysed = 16
    check_run(tmp_path, ledger, cfg, env_steps=1152, updates=13, search=1152 * 16,
              unroll=13 * 64 * 5, reanalyse=13 * reanalysed * 6 * 16, learn_rows=[1152],
              returns_within=(0, 1_000))  # breakout: +1 a brick
    assert trainer.loop.update_credit == pytest.approx(25.6 - 13)


# Wall time, 2 CPU cores shared with other jobs: 54 s with a cold XLA cache, 27 s warm.
def test_text_coin_at_the_text_preset(tmp_path):
    """text/coin at `text`: the token encoder, the recurrent memory, action masks, MuZero
    search, 100 greedy evaluation episodes."""
    cfg = user_config("text/coin", 1024)
    assert config_lib.default_preset("text/coin") == "text"
    ledger = Trainer(cfg, str(tmp_path)).run(progress=False)
    N, C = cfg.run.num_envs, cfg.run.collect_steps  # 16 copies x 8 steps = 128 a phase
    B, K, S = cfg.train.batch_size, cfg.train.unroll_steps, cfg.search.num_simulations
    assert (N, C, B, K, S) == (16, 8, 64, 5, 16)
    assert (cfg.train.learning_starts, cfg.train.train_ratio) == (1_000, 0.5)
    assert cfg.run.eval_episodes == 100
    assert cfg.model.memory == "recurrent"
    # 8 collections (1,024 steps); the learner starts after the 8th: 0.5 x 128 = 64 updates,
    # each reanalysing round(0.99 x 64) = 63 samples at 6 positions, 16 simulations each.
    reanalysed = 63
    check_run(tmp_path, ledger, cfg, env_steps=1024, updates=64, search=1024 * 16,
              unroll=64 * 64 * 5, reanalyse=64 * reanalysed * 6 * 16, learn_rows=[1024],
              returns_within=(0, 1))  # coin: 1 for taking the coin
    assert (tmp_path / "vocabulary.json").exists()


def tiny_catch(*overrides):
    return config_lib.override(config_lib.tiny(), ["world=catch", *overrides])


# Wall time, 2 CPU cores shared with other jobs: 34 s with a cold XLA cache, 13 s warm.
def test_planning_free_ablation_counts_no_search(tmp_path, monkeypatch):
    """`search.algorithm=none` through Trainer: no simulation is spent acting or reanalysing, only
    the training unroll. (Not a learning test: tiny catch at 3,000 real steps, seed 0, reached
    only -0.2 greedy over 20 episodes (evaluations at 1k / 2k / 3k: 0.1, -0.3, -0.2; -0.14 over
    100), against about -0.6 for random play: too weak and too slow a signal for the suite.)

    The ledger's counts come from the config (`update_cost`, `simulations_per_root`), so the
    programs the Trainer builds are also traced here through a latent model that counts its
    calls: every search they hold (acting, evaluation, the learner) looks at its roots (the
    policy head acts) and never applies the dynamics."""
    from dreamer import programs
    from dreamer import search as search_lib

    calls = {"represent": 0, "dynamics": 0}
    latent_model = search_lib.latent_model

    def counting_latent_model(model):
        fns = latent_model(model)

        def counted(name):
            def call(*args, **kwargs):
                calls[name] += 1  # at trace time: once per call site in a program
                return getattr(fns, name)(*args, **kwargs)
            return call

        return dataclasses.replace(fns, represent=counted("represent"),
                                   dynamics=counted("dynamics"))

    monkeypatch.setattr(search_lib, "latent_model", counting_latent_model)
    # built here, not taken from the per-process cache of another test's programs
    monkeypatch.setattr(programs, "_PROGRAMS", type(programs._PROGRAMS)())
    # Programs of their own (no search): not in the tiny_catch group, whose programs they would
    # push out of the per-process cache.
    cfg = tiny_catch("search.algorithm=none", "run.real_steps=256", "train.learning_starts=100",
                     "run.eval_interval=10000")
    ledger = Trainer(cfg, str(tmp_path)).run(progress=False)
    assert calls["represent"] >= 2 and calls["dynamics"] == 0, calls  # acting and evaluation
    B, K = cfg.train.batch_size, cfg.train.unroll_steps
    assert (B, K, cfg.run.num_envs, cfg.run.collect_steps, cfg.run.eval_episodes) == (32, 3, 4, 8, 10)
    # 4 copies x 8 steps = 32 real steps a phase, 8 phases; the learner runs after phases 4..8
    # (>= 100 steps), 1 x 32 = 32 updates each: 160 updates, none reanalysed, none searched.
    check_run(tmp_path, ledger, cfg, env_steps=256, updates=160, search=0, unroll=160 * 32 * 3,
              reanalyse=0, learn_rows=[128, 160, 192, 224, 256],
              returns_within=(-1, 1))  # catch: +1 caught, -1 missed
    assert ledger.simulated == ledger.unroll == 160 * B * K


# Wall time, 2 CPU cores shared with other jobs: 20 s alone with a cold XLA cache, 5 s with
# the tiny_catch programs compiled.
@pytest.mark.xdist_group("tiny_catch")  # shares compiled programs with the other catch runs
def test_evaluation_at_temperature_one_samples(tmp_path):
    """run.eval_temperature=1: the run's evaluation samples the search policy instead of playing
    its best action: on the same key (the same ball drops), its returns are those of the sampled
    evaluation and not those of the greedy one.

    Before any update (64 real steps, learning from 100): the untrained network's search spreads
    its 8 visits, so sampling shows. After 160 updates (256 steps) the visits on catch concentrate
    on one action and sampled play equalled greedy play on 20 of 20 episodes (seed 0, measured)."""
    cfg = tiny_catch("run.eval_temperature=1", "run.real_steps=64", "run.eval_episodes=20")
    assert cfg.train.learning_starts == 100 and cfg.run.eval_interval == 1_000
    trainer = Trainer(cfg, str(tmp_path))
    ledger = trainer.run(progress=False)
    assert (ledger.env_steps, ledger.updates) == (64, 0)
    rows = read_eval_rows(tmp_path)
    assert len(rows) == 1 and int(rows[0][0]) == 64 and int(rows[0][5]) == 20
    recorded = float(rows[0][3])
    # Trainer.evaluate draws its key from the real step, so these replay the run's evaluation
    sampled = trainer.evaluate()  # at run.eval_temperature, 1
    assert sampled.shape == (20,) and set(np.unique(sampled)) <= {-1.0, 1.0}
    assert float(sampled.mean()) == recorded == ledger.eval_mean_return
    np.testing.assert_array_equal(trainer.evaluate(temperature=1.0), sampled)
    greedy = trainer.evaluate(temperature=0.0)
    assert greedy.shape == (20,) and set(np.unique(greedy)) <= {-1.0, 1.0}
    # measured (seed 0): sampled -0.7, greedy -0.6, 7 of the 20 episodes end differently
    assert np.sum(greedy != sampled) >= 3
    assert float(greedy.mean()) != recorded


# slow (108 s of the default suite's 1,993 s serial, the 2,880 updates rather than the compiles;
# measured one worker, cold cache): the default suite proves learning once, on the tiny text/coin
# maps (test_text_worlds.py::test_tiny_agent_beats_random_play_on_a_small_coin_map). Gumbel
# search, the minatar default, goes through Trainer there with exact counts:
# test_breakout_at_the_minatar_preset above, and the twx preset in test_text_host_worlds.py.
@pytest.mark.slow
def test_tiny_catch_learns_with_gumbel_search(tmp_path):
    """Gumbel search (the minatar and twx presets' algorithm) learns catch past random play at the
    tiny config's 3,000 real steps, as MuZero does in test_agent. Measured, seed 0, 20 greedy
    episodes: -0.6 / -0.7 / 0.1 / 0.0 / 0.7 / 1.0 at 512 / 1,024 / 1,536 / 2,048 / 2,560 / 3,008
    real steps (measured when budgets rounded up to whole rounds; 100 episodes at the end: 1.0
    greedy, 0.98 sampled at T = 1); seed 1 also reached 1.0 (20 and 100 greedy episodes); random
    play about -0.6. The bar is test_agent's, 0.6."""
    # Programs of their own (Gumbel): not in the tiny_catch group, whose programs they would push
    # out of the per-process cache.
    cfg = tiny_catch("search.algorithm=gumbel", "seed=0", "run.eval_interval=10000",
                     "run.eval_episodes=20")
    ledger = Trainer(cfg, str(tmp_path)).run(progress=False)
    assert ledger.env_steps == 3000 and ledger.eval_episodes == 20
    # 93 rounds of 32 steps and one of the 24 left; the learner from the 4th (128 >= 100):
    # 90 x 32 = 2,880 updates (the last round's 24 credit is less than a phase), each
    # reanalysing round(0.5 x 32) = 16 samples at K + 1 = 4 positions with 8 simulations
    assert ledger.updates == 2880
    assert (ledger.search, ledger.unroll, ledger.reanalyse) == (3000 * 8, 2880 * 32 * 3,
                                                               2880 * 16 * 4 * 8)
    assert ledger.eval_mean_return >= 0.6, ledger.eval_mean_return


def test_atari_presets_pin_efficientzero_values():
    """The fields of `atari100k` (EfficientZero V1) and `atari100k-v2` (V2) that their docstrings
    cite from the reference configs; a change here must change the docstring's source with it."""
    v1 = config_lib.preset("atari100k")
    assert v1.train.discount == 0.997**4  # per frame, raised to the frame skip of 4
    assert (v1.train.batch_size, v1.train.unroll_steps, v1.train.td_steps) == (256, 5, 5)
    assert (v1.train.augment_shift, v1.train.augment_intensity) == (4, 0.05)
    assert (v1.train.value_weight, v1.train.consistency_weight) == (0.25, 2.0)
    assert (v1.train.optimizer, v1.train.learning_rate, v1.train.lr_warmup_updates,
            v1.train.lr_decay_updates, v1.train.weight_decay) == ("sgd", 0.2, 1_000, 100_000, 1e-4)
    assert (v1.train.target_update_interval, v1.train.learning_starts) == (200, 2_000)
    assert v1.train.reanalyse_fraction == 0.99 and v1.train.off_policy_age_ratio == 0.3
    assert (v1.search.algorithm, v1.search.num_simulations, v1.search.q_normalisation) == (
        "muzero", 50, "tree")
    assert (v1.search.dirichlet_alpha, v1.search.dirichlet_fraction) == (0.3, 0.25)
    assert (v1.search.pb_c_init, v1.search.pb_c_base) == (1.25, 19652.0)
    assert v1.search.temperature_decay_steps == 0  # 1, 0.5, 0.25 over the whole run
    assert (v1.replay.alpha, v1.replay.beta, v1.replay.beta_anneal_updates) == (0.6, 0.4, 120_000)
    assert v1.train.loss_scale == "efficientzero"  # the whole loss x 1/K
    assert v1.replay.capacity * v1.run.num_envs == v1.run.real_steps == 100_000
    assert (v1.model.channels, v1.model.lstm_hidden, v1.model.projection_dim,
            v1.model.head_hidden, v1.model.value_support) == (64, 512, 1024, 32, 300)
    assert (v1.run.eval_episodes, v1.run.eval_interval) == (32, 10_000)

    v2 = config_lib.preset("atari100k-v2")
    assert (v2.search.algorithm, v2.search.num_simulations,
            v2.search.max_num_considered_actions) == ("gumbel", 16, 0)  # V2's m by |A|
    from dreamer.search import considered_actions

    assert [considered_actions(v2.search, a) for a in (3, 4, 6, 15, 16, 18)] == [2, 4, 4, 4, 8, 8]
    assert (v2.train.value_target, v2.train.reanalyse_value) == ("mixed", True)
    assert (v2.train.mixed_value_age, v2.train.mixed_value_after) == (5_000, 30_000)
    assert (v2.train.value_weight, v2.train.consistency_weight) == (0.25, 5.0)
    assert (v2.replay.alpha, v2.replay.beta) == (1.0, 1.0)
    assert v2.run.eval_episodes == 10
    assert v2.train.discount == v1.train.discount and v2.train.augment_shift == 4
    # V2's learned action embedding, 16 wide (`action_embedding_dim`); on Atari its supports are
    # V1's integers of h in [-300, 300] (`bins: 51` is read for DMC / Gym only) and its entropy
    # bonus is off (`entropy_coeff` enters the loss for DMC / Gym only)
    assert v2.model.action_embedding == 16
    assert (v2.model.value_support, v2.model.reward_support, v2.model.support_bins) == (300, 300, 0)
    assert v2.train.entropy_weight == 0.0
    # the V2 options are off in every other preset
    for name in config_lib.PRESETS:
        if name != "atari100k-v2":
            cfg = config_lib.preset(name)
            assert (cfg.model.action_embedding, cfg.model.support_bins,
                    cfg.train.entropy_weight) == (0, 0, 0.0), name


@pytest.mark.parametrize("assignment, field", [
    ("model.support_bins=1", "model.support_bins"), ("model.support_bins=-3", "model.support_bins"),
    ("model.action_embedding=-1", "model.action_embedding"),
    ("train.entropy_weight=-0.1", "train.entropy_weight")])
def test_v2_option_values_out_of_range_are_refused(assignment, field):
    with pytest.raises(config_lib.ConfigError, match=field):
        config_lib.override(config_lib.tiny(), [assignment])
