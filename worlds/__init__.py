"""Worlds behind one interface: `worlds.make(name, **options)` and `worlds.names()`."""

from worlds.base import EpisodeState, HostWorld, JaxWorld, TimeStep, WorldSpec
from worlds.errors import MissingExtraError, UnknownWorldError, WorldOptionError
from worlds.registry import make, names, register, register_prefix, takes_copies

register("catch", "worlds.catch:Catch")
register("cartpole", "worlds.cartpole:CartPole")
for _game in ("asterix", "breakout", "freeway", "seaquest", "space_invaders"):
    register(f"minatar/{_game}", f"worlds.minatar:make_{_game}")
register("text/coin", "worlds.text:make_coin")
register("text/quest", "worlds.text:make_quest")
register_prefix("atari/", "worlds.atari:make_atari")
register_prefix("twx/", "worlds.twx:make_twx")
register_prefix("textworld/", "worlds.textworld:make_textworld")
register_prefix("gym:", "worlds.gym:make_gym")

__all__ = [
    "EpisodeState",
    "HostWorld",
    "JaxWorld",
    "MissingExtraError",
    "TimeStep",
    "UnknownWorldError",
    "WorldOptionError",
    "WorldSpec",
    "make",
    "names",
    "register",
    "register_prefix",
    "takes_copies",
]
