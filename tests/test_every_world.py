"""The shared world check (`world_check.check_world`) on every registered world: each name
`dreamer worlds` lists, plus one world of each family it lists none of (`gym:<ID>`, `twx/<game>`;
`textworld/<game>` needs a generated game file, and is checked with one in
test_text_host_worlds.py). Built through the registry with a short time limit where the world
takes one, so that auto-reset is exercised within the check's steps."""

import pytest
from extras import require, require_program
from world_check import check_world

import worlds

UNLISTED = ["gym:CartPole-v1", "gym:Acrobot-v1", "twx/coin"]


def _build(name):
    if name.startswith("twx/"):
        require("textworld_express", "the 'text' extra is not installed")
        require_program("java", "Java is not installed (apt install openjdk-17-jre-headless)")
    copies = 2
    try:
        return worlds.make(name, num_envs=copies, max_episode_steps=8)
    except worlds.WorldOptionError:  # a world without a time limit option (catch: 9 steps)
        return worlds.make(name, num_envs=copies)


@pytest.mark.parametrize("name", [*worlds.names(), *UNLISTED])
def test_world_passes_the_shared_check(name):
    world = _build(name)
    try:
        assert worlds.kind(name) == ("jax" if world.is_jax else "host")
        assert world.spec.name == name
        check_world(world, steps=20, copies=2, expect_episode_end=True)
    finally:
        world.close()


HISTORY_WORLDS = ["catch", "cartpole", "text/coin", "gym:CartPole-v1", "twx/coin"]
"""An image, a vector and a token JAX world, a vector and a token host world."""


@pytest.mark.parametrize("name", HISTORY_WORLDS)
def test_world_with_history_passes_the_shared_check(name):
    """`history=3` (worlds.history) on each kind of world: the check's stack rule on every
    step, past episode ends."""
    if name.startswith("twx/"):
        require("textworld_express", "the 'text' extra is not installed")
        require_program("java", "Java is not installed (apt install openjdk-17-jre-headless)")
    try:
        world = worlds.make(name, num_envs=2, max_episode_steps=8, history=3)
    except worlds.WorldOptionError:  # catch: no time limit option
        world = worlds.make(name, num_envs=2, history=3)
    try:
        shape = world.world.spec.observation_shape  # the world's own
        assert world.spec.observation_shape == (*shape[:-1], 3 * shape[-1])
        assert world.spec.name == name and world.is_jax == (worlds.kind(name) == "jax")
        check_world(world, steps=20, copies=2, expect_episode_end=True)
    finally:
        world.close()


def test_every_listed_name_is_checked():
    """The parametrization is read from the registry, so a newly registered world is checked."""
    listed = set(worlds.names())
    assert {"catch", "cartpole", "minatar/breakout", "text/coin", "atari/pong"} <= listed
    assert all(worlds.kind(n) in ("jax", "host") for n in listed | set(UNLISTED))
