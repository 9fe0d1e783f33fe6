"""Worlds behind one interface: `worlds.make(name, num_envs=N, training=False, **options)`,
`worlds.kind(name)` and `worlds.names()` (worlds/registry.py documents what the registry records)."""

from worlds.base import EpisodeState, HostWorld, JaxWorld, TimeStep, WorldSpec
from worlds.errors import MissingExtraError, UnknownWorldError, WorldOptionError
from worlds.registry import (
    eval_options,
    kind,
    make,
    names,
    register,
    register_prefix,
    settings,
    training_options,
)

register("catch", "worlds.catch:Catch")
register("cartpole", "worlds.cartpole:CartPole")
register("tmaze", "worlds.tmaze:TMaze")
for _game in ("asterix", "breakout", "freeway", "seaquest", "space_invaders"):
    register(f"minatar/{_game}", f"worlds.minatar:make_{_game}")
register("text/coin", "worlds.text:make_coin")
register("text/quest", "worlds.text:make_quest")
# Host families. Atari's training copies lose an episode with a life and see clipped rewards
# (the Atari 100k protocol); its evaluation copies play whole games with raw scores.
register_prefix("atari/", "worlds.atari:make_atari", kind="host",
                training_options={"terminal_on_life_loss": True, "reward_clip": True},
                listed="worlds.atari:ATARI_100K_GAMES")
# A TextWorldExpress run trains on the train fold's games and is evaluated on the test fold's.
register_prefix("twx/", "worlds.twx:make_twx", kind="host", eval_options={"fold": "test"})
register_prefix("textworld/", "worlds.textworld:make_textworld", kind="host")
register_prefix("gym:", "worlds.gym:make_gym", kind="host")

__all__ = [
    "EpisodeState",
    "HostWorld",
    "JaxWorld",
    "MissingExtraError",
    "TimeStep",
    "UnknownWorldError",
    "WorldOptionError",
    "WorldSpec",
    "eval_options",
    "kind",
    "make",
    "names",
    "register",
    "register_prefix",
    "settings",
    "training_options",
]
