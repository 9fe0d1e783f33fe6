"""Procedurally generated text adventures (JAX-native): `text/coin` and `text/quest`."""

from __future__ import annotations

from worlds.text.adventure import ROOM_NAMES, VOCABULARY, TextAdventure, render_tokens


def make_coin(rooms: int = 5, max_episode_steps: int | None = None,
              extra_door_probability: float = 0.2, marks: bool = True) -> TextAdventure:
    """`text/coin`: find the coin somewhere in a map of `rooms` rooms and take it (reward 1).

    Args:
      rooms: rooms per map (2 to 20).
      max_episode_steps: time limit (default 3 x rooms).
      extra_door_probability: chance of a passage between neighbouring rooms beyond the tree.
      marks: show Tremaux's marks on the exits (False: the agent must remember where it has
        been, e.g. with `history=k`).
    """
    steps = 3 * rooms if max_episode_steps is None else max_episode_steps
    return TextAdventure("text/coin", rooms, ("coin",), door=False, max_episode_steps=steps,
                         extra_door_probability=extra_door_probability, marks=marks)


def make_quest(rooms: int = 6, max_episode_steps: int | None = None,
               extra_door_probability: float = 0.2, marks: bool = True) -> TextAdventure:
    """`text/quest`: take the key, open the locked door, and take the treasure behind it.

    The treasure lies in a room whose only way in is the locked door; the key lies in another
    room (possibly the start). Reward 1 only for taking the treasure.

    Args:
      rooms: rooms per map including the treasure room (2 to 20).
      max_episode_steps: time limit (default 8 x rooms).
      extra_door_probability: chance of a passage between neighbouring rooms beyond the tree.
      marks: show Tremaux's marks on the exits (False: the agent must remember where it has
        been).
    """
    steps = 8 * rooms if max_episode_steps is None else max_episode_steps
    return TextAdventure("text/quest", rooms, ("key", "treasure"), door=True,
                         max_episode_steps=steps, extra_door_probability=extra_door_probability,
                         marks=marks)


__all__ = ["ROOM_NAMES", "VOCABULARY", "TextAdventure", "make_coin", "make_quest", "render_tokens"]
