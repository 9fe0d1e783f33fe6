"""Worlds behind one interface: `worlds.make(name, **options)` and `worlds.names()`."""

from worlds.base import EpisodeState, HostWorld, JaxWorld, TimeStep, WorldSpec
from worlds.registry import (
    UnknownWorldError,
    WorldOptionError,
    make,
    names,
    register,
    register_prefix,
)

register("catch", "worlds.catch:Catch")
register("cartpole", "worlds.cartpole:CartPole")
for _game in ("asterix", "breakout", "freeway", "seaquest", "space_invaders"):
    register(f"minatar/{_game}", f"worlds.minatar:make_{_game}")
register_prefix("atari/", "worlds.atari:make_atari")
register_prefix("gym:", "worlds.gym:make_gym")

__all__ = [
    "EpisodeState",
    "HostWorld",
    "JaxWorld",
    "TimeStep",
    "UnknownWorldError",
    "WorldOptionError",
    "WorldSpec",
    "make",
    "names",
    "register",
    "register_prefix",
]
