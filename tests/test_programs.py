"""The run's compiled programs: which config fields they are keyed on, and their sharing."""

import dataclasses

import pytest

import worlds
from dreamer import config as config_lib
from dreamer.programs import host_fields, program_key
from dreamer.train import Trainer

HOST_FIELDS = (
    "seed",
    "run.real_steps", "run.eval_interval", "run.checkpoint_interval", "run.keep_checkpoints",
    "run.eval_temperature", "run.eval_episodes", "run.worlds", "run.real_steps_each",
    "run.rehearsal", "run.dream_between",
    "train.learning_starts", "train.reanalyse_pass_interval", "train.reanalyse_pass_rows",
    "train.reanalyse_pass_new_rows",
    "search.temperature_decay_steps",
)
"""The fields that never reach a jitted program (each declares itself with
`config.host_field`)."""


def tiny_catch(*overrides):
    return config_lib.override(config_lib.tiny(), ["world=catch", *overrides])


def test_the_host_fields_are_those_declared():
    assert set(host_fields(config_lib.Config())) == set(HOST_FIELDS)
    assert len(host_fields(config_lib.Config())) == len(HOST_FIELDS)


def test_only_host_fields_are_left_out_of_the_program_key():
    world = worlds.make("catch")
    base = program_key(tiny_catch(), world, None)
    hosted = tiny_catch("seed=3", "run.real_steps=1000", "run.eval_interval=50",
                        "run.checkpoint_interval=64", "run.keep_checkpoints=5",
                        "run.eval_temperature=1", "run.eval_episodes=3", "run.rehearsal=false",
                        "run.dream_between=32", "train.learning_starts=7",
                        "train.reanalyse_pass_interval=64", "train.reanalyse_pass_rows=128",
                        "search.temperature_decay_steps=100")
    assert program_key(hosted, world, None) == base
    for program_field in ("train.batch_size=16", "run.num_envs=8", "search.num_simulations=4",
                          "replay.capacity=64", "world_options.max_episode_steps=5"):
        assert program_key(tiny_catch(program_field), world, None) != base, program_field


def test_a_host_world_is_keyed_on_its_spec_not_its_name():
    world = worlds.make("gym:CartPole-v1", num_envs=1)
    try:
        base = config_lib.override(config_lib.tiny(), ["world=gym:CartPole-v1"])
        renamed = dataclasses.replace(base, world="gym:Other-v0", world_options=(("x", 1),))
        assert program_key(renamed, world, None) == program_key(base, world, None)
        batch = config_lib.override(base, ["train.batch_size=16"])
        assert program_key(batch, world, None) != program_key(base, world, None)
    finally:
        world.close()


@pytest.mark.xdist_group("tiny_catch")
def test_runs_of_one_config_share_compiled_programs(tmp_path):
    """Trainers in one process that differ only in seed, real budget, schedule or evaluation size
    reuse the same jitted programs (no second trace, lowering or compile; the evaluation program
    is one per episode count); any other difference builds new ones."""
    first = Trainer(tiny_catch("seed=1"), str(tmp_path / "a"))
    again = Trainer(tiny_catch("seed=2", "run.real_steps=1000", "run.checkpoint_interval=64",
                               "run.eval_interval=50", "run.eval_episodes=3"), str(tmp_path / "b"))
    assert again.programs is first.programs
    assert first.programs.evaluate(3) is again.programs.evaluate(3)
    assert first.programs.evaluate(3) is not first.programs.evaluate(10)
    assert first.programs.collect_of_length(2) is again.programs.collect_of_length(2)
    assert first.programs.collect_of_length(8) is first.programs.collect
    other = Trainer(tiny_catch("train.batch_size=16"), str(tmp_path / "c"))
    assert other.programs is not first.programs
    # another JAX world of the same spec has its own programs: its collector contains the world
    from worlds.catch import Catch

    worlds.register("test/catch-copy", type("CatchCopy", (Catch,), {}))
    copy = Trainer(tiny_catch("world=test/catch-copy"), str(tmp_path / "d"))
    assert copy.spec == first.spec and copy.programs is not first.programs
