"""Procedurally generated text adventures as pure JAX worlds.

Each episode draws a map of `rooms` rooms on a grid (a random spanning tree grown from the centre,
plus a few extra doors between neighbouring rooms), names the rooms from a fixed list, and places
items. Everything is drawn from the reset key, so a key always gives the same adventure, and reset
and step jit and vmap like any other `JaxWorld`.

Observations are fixed-length int32 token ids over `VOCABULARY` (id 0 pads), reading like
"you are in the kitchen . exits : north ( way back ) , east ( explored ) , west . you see a key .
inventory : nothing ." They carry what a memoryless agent needs: the room, its exits with
Tremaux's marks (passages already walked are "explored"; the one by which the player first
entered the room is the "way back"), the items here, a door here and its state, and the
inventory. With the marks, a memoryless rule (walk unexplored passages first, else the way back)
explores the whole map, as Tremaux's maze algorithm does. Actions index a fixed command list; the action mask keeps the commands that make
sense here (existing passable exits, `take X` where X lies, `open door` at a locked door).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from worlds.base import JaxWorld, WorldSpec
from worlds.errors import WorldOptionError

DIRECTIONS = ("north", "south", "east", "west")
_OPPOSITE = np.array([1, 0, 3, 2], np.int32)  # north<->south, east<->west
_DELTA = np.array([[-1, 0], [1, 0], [0, 1], [0, -1]], np.int32)  # (row, column) per direction

ROOM_NAMES = (
    "kitchen", "hallway", "cellar", "attic", "pantry", "library", "study", "bedroom", "bathroom",
    "garden", "garage", "parlour", "lounge", "workshop", "chapel", "gallery", "laundry", "nursery",
    "armoury", "vault",
)
ITEM_NAMES = ("coin", "key", "treasure")

VOCABULARY: tuple[str, ...] = (
    "<pad>", "you", "are", "in", "the", ".", ",", ":", "(", ")", "exits", "explored", "way", "back",
    "see", "a",
    "an", "inventory", "nothing", "door", "locked", "open", "leads", *DIRECTIONS, *ITEM_NAMES,
    *ROOM_NAMES,
)
"""Token id -> word; id 0 is padding. Shared by every text adventure."""

TOKEN = {word: i for i, word in enumerate(VOCABULARY)}


@struct.dataclass
class AdventureState:
    """One adventure mid-episode. R rooms, I item kinds of the world.

    Attributes:
      room_names: [R] int32 token id of each room's name.
      exits: [R, 4] int32 room reached going north/south/east/west, -1 where there is no exit.
      room: [] int32 the player's room.
      visited: [R] bool rooms the player has been in this episode.
      walked: [R, 4] bool passages walked this episode (marked on both of their sides).
      entry: [R] int32 direction, from each room, of the passage by which the player first
        entered it (-1 for the start room and rooms not yet visited).
      item_room: [I] int32 room each item lies in, -1 once carried.
      carried: [I] bool items in the inventory.
      door_room: [] int32 room with the locked door (-1 in worlds without a door).
      door_direction: [] int32 direction of the door from `door_room`.
      door_open: [] bool whether the door has been opened.
    """

    room_names: jax.Array
    exits: jax.Array
    room: jax.Array
    visited: jax.Array
    walked: jax.Array
    entry: jax.Array
    item_room: jax.Array
    carried: jax.Array
    door_room: jax.Array
    door_direction: jax.Array
    door_open: jax.Array


def _pick(allowed: jax.Array, uniform: jax.Array) -> jax.Array:
    """Index of the largest of `uniform` (in [0, 1)) where `allowed`: uniform over the allowed
    positions (0 if none is). No transform of the noise is needed for uniform choices, which keeps
    the world's reset cheap: it is computed at every step of a vmapped auto-reset."""
    return jnp.argmax(jnp.where(allowed, uniform, -1.0)).astype(jnp.int32)


def _first_ranks(uniform: jax.Array, count: int) -> jax.Array:
    """[count] indices of the `count` smallest of `uniform`, smallest first: the start of the
    permutation that sorts it (ties in index order), by counting pairwise comparisons, which is
    much cheaper than a sort for a few dozen numbers."""
    index = jnp.arange(uniform.shape[0])
    before = (uniform[None, :] < uniform[:, None]) | (
        (uniform[None, :] == uniform[:, None]) & (index[None, :] < index[:, None]))
    rank = before.sum(-1)  # [n] position of each number in sorted order
    return jnp.argmax(rank[None, :] == jnp.arange(count)[:, None], axis=-1).astype(jnp.int32)


def _grow_map(noise, rooms: int, grid: int, extra_door_probability: float, leaf_last: bool):
    """A connected map: rooms placed one by one next to a random placed room, then extra doors.

    Args:
      noise: [rooms + 1, rooms * 4] uniforms in [0, 1): row i < rooms picks room i's place, the
        last row decides the extra doors. (All randomness is drawn by one call: each random call
        adds a threefry block to the compiled program, and `step` compiles a reset too.)

    Returns (exits [R, 4] int32, parent_direction [] int32 of the last room's link to its parent,
    parent [] int32 the last room's parent). With `leaf_last`, no extra door touches the last room,
    so the tree edge is its only way in.
    """
    delta = jnp.asarray(_DELTA)
    opposite = jnp.asarray(_OPPOSITE)
    centre = grid // 2
    position = jnp.full((rooms, 2), -1, jnp.int32).at[0].set(centre)
    occupant = jnp.full((grid, grid), -1, jnp.int32).at[centre, centre].set(0)
    exits = jnp.full((rooms, 4), -1, jnp.int32)
    room_index = jnp.arange(rooms)

    def place(i, carry):
        position, occupant, exits, _, _ = carry
        target = position[:, None, :] + delta[None, :, :]  # [R, 4, 2]
        inside = jnp.all((target >= 0) & (target < grid), axis=-1)
        clipped = jnp.clip(target, 0, grid - 1)
        free = occupant[clipped[..., 0], clipped[..., 1]] < 0
        candidate = inside & free & (room_index < i)[:, None]
        choice = _pick(candidate.reshape(-1), noise[i])
        parent, direction = choice // 4, choice % 4
        cell = target[parent, direction]
        position = position.at[i].set(cell)
        occupant = occupant.at[cell[0], cell[1]].set(i)
        exits = exits.at[parent, direction].set(i).at[i, opposite[direction]].set(parent)
        return position, occupant, exits, parent.astype(jnp.int32), direction.astype(jnp.int32)

    zero = jnp.zeros((), jnp.int32)
    position, occupant, exits, parent, direction = jax.lax.fori_loop(
        1, rooms, place, (position, occupant, exits, zero, zero)
    )
    # Extra doors between grid neighbours, decided on each room's north and east side only, so
    # every pair is decided once and the two writes of a pair never collide.
    target = position[:, None, :] + delta[None, :, :]
    inside = jnp.all((target >= 0) & (target < grid), axis=-1)
    clipped = jnp.clip(target, 0, grid - 1)
    neighbour = jnp.where(inside, occupant[clipped[..., 0], clipped[..., 1]], -1)  # [R, 4]
    add = (neighbour >= 0) & (exits < 0) & jnp.asarray([True, False, True, False])[None, :]
    add &= noise[rooms].reshape(rooms, 4) < extra_door_probability
    if leaf_last:
        add &= (room_index[:, None] != rooms - 1) & (neighbour != rooms - 1)
    exits = jnp.where(add, neighbour, exits)
    exits = exits.at[jnp.where(add, neighbour, rooms), jnp.broadcast_to(opposite, (rooms, 4))].set(
        jnp.broadcast_to(room_index[:, None], (rooms, 4)).astype(jnp.int32), mode="drop")
    return exits, direction, parent


class TextAdventure(JaxWorld):
    """A generated text adventure: find the goal item (and, with a door, the key to reach it).

    Args:
      name: registered name for the spec.
      rooms: rooms per map (2 to len(ROOM_NAMES)).
      items: item names placed in the map (from ITEM_NAMES); the last one is the goal, whose
        taking earns reward 1 and ends the episode.
      door: lock the goal's room behind a door that the `key` item opens.
      max_episode_steps: time limit.
      extra_door_probability: chance of a passage between two neighbouring rooms beyond the
        spanning tree (maps get loops).
      marks: show Tremaux's marks ("explored", "way back") on the exits. Without them the
        observation tells nothing of where the player has been, so a memoryless policy cannot
        explore a map: a world that needs the agent's own memory (`history=k`, issue #24). The
        observation keeps its length either way.

    Observations are as long as the longest one the world can produce, padded with 0.
    """

    def __init__(self, name: str, rooms: int, items: tuple[str, ...], door: bool,
                 max_episode_steps: int, extra_door_probability: float = 0.2, marks: bool = True):
        if not 2 <= rooms <= len(ROOM_NAMES):
            raise WorldOptionError(f"{name}: rooms must be in [2, {len(ROOM_NAMES)}], got {rooms}")
        if door and ("key" not in items or rooms < 2):
            raise WorldOptionError(f"{name}: a door needs a key item")
        if max_episode_steps < 1:
            raise WorldOptionError(f"{name}: max_episode_steps must be >= 1, got {max_episode_steps}")
        self.rooms, self.items, self.door = rooms, tuple(items), door
        self.extra_door_probability = float(extra_door_probability)
        self.marks = bool(marks)
        self.grid = rooms  # a grid with more cells than rooms always has a free cell to grow into
        self.commands = tuple(f"go {d}" for d in DIRECTIONS) + tuple(f"take {i}" for i in items)
        if door:
            self.commands += ("open door",)
        self.vocabulary: list[str] = list(VOCABULARY)
        self.length = self._longest_observation()
        self.spec = WorldSpec(
            name=name,
            observation_shape=(self.length,),
            observation_dtype="int32",
            num_actions=len(self.commands),
            action_names=self.commands,
            max_episode_steps=max_episode_steps,
            observation_kind="tokens",
            reward_range=(0.0, 1.0),
            has_action_mask=True,
        )

    # --- generation -----------------------------------------------------------------------------
    def _reset(self, key):
        R, num_items = self.rooms, len(self.items)
        num_names = len(ROOM_NAMES)
        sizes = [(R + 1) * R * 4, num_names, (num_items + 1) * R]
        uniform = jax.random.uniform(key, (sum(sizes),))
        map_noise, name_noise, place_noise = jnp.split(uniform, np.cumsum(sizes)[:-1])
        exits, last_direction, last_parent = _grow_map(
            map_noise.reshape(R + 1, R * 4), R, self.grid, self.extra_door_probability,
            leaf_last=self.door,
        )
        names = _first_ranks(name_noise, R)  # a random permutation's first R names
        room_names = jnp.asarray([TOKEN[n] for n in ROOM_NAMES], jnp.int32)[names]
        place = place_noise.reshape(num_items + 1, R)

        def pick(row, allowed):
            return _pick(allowed, place[row])

        # With a door, the goal lies in the last-placed room (a leaf behind the door) and no other
        # item or the start may be there; without one, the goal avoids only the start.
        allowed = jnp.arange(R) != R - 1 if self.door else jnp.ones((R,), bool)
        start = pick(0, allowed)
        item_room = []
        for i in range(num_items):
            if i < num_items - 1:
                item_room.append(pick(i + 1, allowed))
            elif self.door:
                item_room.append(jnp.asarray(R - 1, jnp.int32))
            else:
                item_room.append(pick(i + 1, jnp.arange(R) != start))
        state = AdventureState(
            room_names=room_names,
            exits=exits,
            room=start,
            visited=jnp.zeros((R,), bool).at[start].set(True),
            walked=jnp.zeros((R, 4), bool),
            entry=jnp.full((R,), -1, jnp.int32),
            item_room=jnp.stack(item_room),
            carried=jnp.zeros((len(self.items),), bool),
            door_room=jnp.asarray(last_parent if self.door else -1, jnp.int32),
            door_direction=jnp.asarray(last_direction if self.door else 0, jnp.int32),
            door_open=jnp.zeros((), bool),
        )
        return state, self.observe(state)

    # --- rules ----------------------------------------------------------------------------------
    def _door_here(self, s: AdventureState):
        return s.door_room == s.room

    def _passable(self, s: AdventureState):
        """[4] bool: exits from the player's room that can be walked through now."""
        exits = s.exits[s.room] >= 0
        blocked = self._door_here(s) & ~s.door_open & (jnp.arange(4) == s.door_direction)
        return exits & ~blocked

    def _action_mask(self, s: AdventureState):
        items_here = (s.item_room == s.room) & ~s.carried
        mask = [self._passable(s), items_here]
        if self.door:
            mask.append((self._door_here(s) & ~s.door_open)[None])
        return jnp.concatenate(mask)

    def _step(self, game: AdventureState, action, key):
        del key
        s = game
        action = jnp.asarray(action, jnp.int32)
        valid = self._action_mask(s)[action]  # an invalid command changes nothing
        move = valid & (action < 4)
        room = jnp.where(move, s.exits[s.room, jnp.clip(action, 0, 3)], s.room)
        taken = valid & (action - 4 == jnp.arange(len(self.items)))
        goal = len(self.items) - 1
        carried = s.carried | taken
        item_room = jnp.where(taken, -1, s.item_room)
        door_open = s.door_open
        if self.door:
            key_index = self.items.index("key")
            opens = valid & (action == len(self.commands) - 1) & s.carried[key_index]
            door_open = door_open | opens
        direction = jnp.clip(action, 0, 3)
        back = jnp.asarray(_OPPOSITE)[direction]
        walked = s.walked.at[s.room, direction].set(s.walked[s.room, direction] | move)
        walked = walked.at[room, back].set(walked[room, back] | move)
        entry = s.entry.at[room].set(jnp.where(move & ~s.visited[room], back, s.entry[room]))
        s = s.replace(room=room, visited=s.visited.at[room].set(True), walked=walked, entry=entry,
                      item_room=item_room, carried=carried, door_open=door_open)
        terminated = taken[goal]
        return s, self.observe(s), jnp.where(terminated, 1.0, 0.0), terminated

    # --- observation ----------------------------------------------------------------------------
    # The observation is a static template of every token any observation could hold, each tied
    # to a flag; `observe` computes the flags, keeps the flagged tokens and packs them to the
    # front. (A table keeps the compiled program small: `step` also compiles a reset's `observe`.)
    _ROOM, _DOOR_DIRECTION = -1, -2  # template slots filled from the state

    def _template(self) -> tuple[np.ndarray, list[str]]:
        """(tokens [T] int32 with the slots above, flag name of each token) in reading order."""
        entries: list[tuple[int, str]] = []

        def add(words, flag="always"):
            for word in words:
                entries.append((word if isinstance(word, int) else TOKEN[word], flag))

        add(["you", "are", "in", "the", self._ROOM, ".", "exits", ":"])
        for d, direction in enumerate(DIRECTIONS):
            add([direction], f"exit{d}")
            add(["(", "explored", ")"], f"explored{d}")
            add(["(", "way", "back", ")"], f"way_back{d}")
            add([","], f"exit_comma{d}")
        add(["nothing"], "no_exits")
        add(["."])
        for i, item in enumerate(self.items):
            add(["you", "see"], f"first_here{i}")
            add([","], f"later_here{i}")
            add(["a", item], f"here{i}")
        add(["."], "any_here")
        if self.door:
            add(["a", "locked"], "locked")
            add(["an", "open"], "opened")
            add(["door", "leads", self._DOOR_DIRECTION, "."], "door_here")
        add(["inventory", ":"])
        for i, item in enumerate(self.items):
            add([","], f"later_carried{i}")
            add([item], f"carried{i}")
        add(["nothing"], "no_carried")
        add(["."])
        tokens, flags = zip(*entries, strict=True)
        return np.asarray(tokens, np.int32), list(flags)

    def _flags(self, s: AdventureState) -> dict[str, jax.Array]:
        """Flag name -> [n] bool, in the order `observe` stacks them (see `_template`)."""
        passable = self._passable(s)
        later_exits = jnp.flip(jnp.cumsum(jnp.flip(passable))) - passable
        here = (s.item_room == s.room) & ~s.carried
        here_before = jnp.cumsum(here) - here
        carried_before = jnp.cumsum(s.carried) - s.carried
        door_here = self._door_here(s)
        return {
            "always": jnp.ones((1,), bool),
            "exit": passable,
            "explored": (s.walked[s.room] & passable & (jnp.arange(4) != s.entry[s.room])
                         & self.marks),
            "way_back": passable & (jnp.arange(4) == s.entry[s.room]) & self.marks,
            "exit_comma": passable & (later_exits > 0),
            "no_exits": ~passable.any(keepdims=True),
            "first_here": here & (here_before == 0),
            "later_here": here & (here_before > 0),
            "here": here,
            "any_here": here.any(keepdims=True),
            "locked": (door_here & ~s.door_open)[None],
            "opened": (door_here & s.door_open)[None],
            "door_here": door_here[None],
            "later_carried": s.carried & (carried_before > 0),
            "carried": s.carried,
            "no_carried": ~s.carried.any(keepdims=True),
        }

    def _flag_index(self, flag_names: list[str]) -> np.ndarray:
        """[T] position of each template token's flag in the concatenated flag vector."""
        sizes = {"exit": 4, "explored": 4, "way_back": 4, "exit_comma": 4, "first_here": len(self.items),
                 "later_here": len(self.items), "here": len(self.items),
                 "later_carried": len(self.items), "carried": len(self.items)}
        offset, start = 0, {}
        for name in ("always", "exit", "explored", "way_back", "exit_comma", "no_exits", "first_here",
                     "later_here", "here", "any_here", "locked", "opened", "door_here",
                     "later_carried", "carried", "no_carried"):
            start[name] = offset
            offset += sizes.get(name, 1)
        index = []
        for flag in flag_names:
            name = flag.rstrip("0123456789")
            index.append(start[name] + (int(flag[len(name):]) if flag != name else 0))
        return np.asarray(index, np.int32)

    def _longest_observation(self) -> int:
        """Tokens of an observation with every optional piece included (an upper bound)."""
        tokens, flags = self._template()
        self._template_tokens, self._template_flags = tokens, self._flag_index(flags)
        return len(tokens)

    def observe(self, s: AdventureState) -> jax.Array:
        """[length] int32 token ids describing `s` from the player's room, padded with 0."""
        keep = jnp.concatenate(list(self._flags(s).values()))[self._template_flags]
        template = jnp.asarray(self._template_tokens)
        direction_tokens = jnp.asarray([TOKEN[d] for d in DIRECTIONS], jnp.int32)
        tokens = jnp.where(template == self._ROOM, s.room_names[s.room], template)
        tokens = jnp.where(tokens == self._DOOR_DIRECTION,
                           direction_tokens[jnp.clip(s.door_direction, 0, 3)], tokens)
        position = jnp.where(keep, jnp.cumsum(keep) - 1, self.length)
        return jnp.zeros((self.length,), jnp.int32).at[position].set(tokens, mode="drop")

    # --- reading --------------------------------------------------------------------------------
    def render(self, observation) -> str:
        """Decodes one observation's token ids into readable text.

        Example: "You are in the kitchen. Exits: north (way back), west. You see a key.
        Inventory: nothing."
        """
        return render_tokens(observation, self.vocabulary)


def render_tokens(observation, vocabulary) -> str:
    """Token ids -> text: words joined by spaces, punctuation attached, sentences capitalised."""
    ids = np.asarray(observation).reshape(-1)
    words = [vocabulary[i] for i in ids if i != 0]
    text = " ".join(words)
    text = re.sub(r" ([.,:)])", r"\1", text).replace("( ", "(")
    return re.sub(r"(^|[.] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def solve(world: TextAdventure, game: AdventureState) -> list[int] | None:
    """A shortest command sequence that wins from `game`, found by breadth-first search over the
    true state (room, inventory, door), with the rules re-stated in numpy. None if none exists.

    Args:
      world: the adventure.
      game: one unbatched state (e.g. `EpisodeState.game`).
    """
    exits = np.asarray(game.exits)
    item_room = np.asarray(game.item_room)
    door_room, door_direction = int(game.door_room), int(game.door_direction)
    goal = len(world.items) - 1
    key_index = world.items.index("key") if world.door else -1
    start = (int(game.room), tuple(bool(c) for c in np.asarray(game.carried)), bool(game.door_open))
    parent = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            room, carried, door_open = node
            for action in range(world.spec.num_actions):
                after = None
                if action < 4:
                    blocked = room == door_room and action == door_direction and not door_open
                    if exits[room, action] >= 0 and not blocked:
                        after = (int(exits[room, action]), carried, door_open)
                elif action - 4 < len(world.items):
                    item = action - 4
                    if item_room[item] == room and not carried[item]:
                        if item == goal:
                            path = [action]
                            while parent[node] is not None:
                                node, step = parent[node]
                                path.append(step)
                            return path[::-1]
                        after = (room, carried[:item] + (True,) + carried[item + 1 :], door_open)
                elif room == door_room and not door_open and carried[key_index]:
                    after = (room, carried, True)
                if after is not None and after not in parent:
                    parent[after] = (node, action)
                    nxt.append(after)
        frontier = nxt
    return None
