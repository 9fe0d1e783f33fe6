"""TextWorldExpress games (`twx/coin`, `twx/cookingworld`, `twx/mapreader`, ...) as a host world.

TextWorldExpress (the optional `text` extra, Apache-2.0) simulates parser text games in Java. One
world starts one JVM and drives `num_envs` independent game engines inside it (one TextWorldExpress
`PythonInterface` object per copy), stepped in sequence from Python through py4j. `close()` stops
the JVM.

Episodes. Each episode of copy i plays a game generated from a seed drawn from the chosen fold's
seed list (TextWorldExpress keeps 1,000 seeds per fold: train 0-999, dev 10000-10999, test
20000-20999, and the folds use disjoint object sets in games like cookingworld). The draws come
from a numpy generator seeded with `seed + i` at `reset(seed)`, so a seed replays the same games.
An episode ends with `terminated` when the game reports success or failure (or the score reaches
1), and with `truncated` after `max_episode_steps` agent steps. The reward of a step is the change
of TextWorldExpress's normalised score (in [-1, 1]); `success[i]` tells whether copy i's last step
won its game.

Observations are token ids (`observation_kind="tokens"`): the fields `task` (the task
description), `history` (the episode's last `history` commands, 4 by default), `feedback` (the
game's answer to the last command; empty where it repeats the room description), `inventory` and
`look` (the room description), each tokenised by `worlds.text_tokens` and joined by `<sep>`, cut
or padded with 0 to `max_tokens`. The history is there because the rest does not say which rooms
were visited: a policy that maps each observation to one fixed command (as a greedy memoryless
agent does) won 3-5% of twx/coin games with the other fields alone and 32-41% with the last 4
commands added (uniform random valid commands: 38-43%; 100 games, 100 steps each).

Actions index a command list fixed per game family (a game and its non-default game options);
`action_mask` marks the commands TextWorldExpress lists as valid now (`validActions`, which it
gives unordered). The vocabulary and the command list of a family are built once by playing games
of all three folds: the gold path and a seeded random walk of every game (`build_family`), and kept
as a JSON family file: shipped in `worlds/data/` for the default options of coin, cookingworld
and mapreader, built and cached under `vocab_cache_dir()` for other options (a few minutes, once).
A valid command that the build never met cannot be chosen (it is counted in
`world.unlisted_commands`); "look around" and "inventory", always valid, keep the mask from ever
being empty. Measured over 6,300 random valid commands per game: no unlisted command in coin, one
in mapreader (`put <item> in box` for a distractor item), and in cookingworld a few dozen of its
many `put <item> in <container>` combinations (none of them on a gold path).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from worlds.base import HostWorld, TimeStep
from worlds.errors import MissingExtraError, UnknownWorldError, WorldOptionError
from worlds.text_tokens import (
    Vocabulary,
    read_family,
    safe_name,
    token_world_spec,
    tokenize,
    write_family,
)

TWX_GAMES: tuple[str, ...] = (
    "coin",
    "cookingworld",
    "mapreader",
    "twc",
    "arithmetic",
    "sorting",
    "simonsays",
    "peckingorder",
)
"""TextWorldExpress 1.1.0's games; family files ship for the default options of the first three."""

FOLDS: tuple[str, ...] = ("train", "dev", "test")
OBSERVATION_FIELDS: tuple[str, ...] = ("task", "history", "feedback", "inventory", "look")
FAMILY_FORMAT = 1
BUILD_RANDOM_STEPS = 30
"""Random-walk steps per game when a family is built (besides the game's gold path)."""
INSTALL_TEXT_EXTRA = 'pip install -e ".[text]"'
INSTALL_JAVA = "apt install openjdk-17-jre-headless"


# --- the Java engine -------------------------------------------------------------------------


def _import_twx(world: str):
    try:
        import textworld_express
    except ImportError:
        raise MissingExtraError(
            f"{world} needs TextWorldExpress (the 'text' extra): {INSTALL_TEXT_EXTRA}"
        ) from None
    return textworld_express


@lru_cache(maxsize=1)
def _java_major_version() -> int | None:
    """Major version of the `java` on PATH, None if there is none."""
    java = shutil.which("java")
    if java is None:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        return 0
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major  # "1.8.0" is Java 8


def _check_java(world: str) -> None:
    version = _java_major_version()
    if version is None:
        raise MissingExtraError(f"{world} needs Java 17 and `java` is not on PATH: {INSTALL_JAVA}")
    if version < 8:
        raise MissingExtraError(
            f"{world} needs Java 17 (found Java {version or 'of unknown version'}): {INSTALL_JAVA}"
        )


class TwxEngine:
    """One JVM running `count` independent TextWorldExpress game engines.

    Attributes:
      servers: one py4j proxy of `textworldexpress.runtime.PythonInterface` per engine.
      process: the JVM's `subprocess.Popen`.
    """

    def __init__(self, count: int, world: str = "twx"):
        _import_twx(world)
        _check_java(world)
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
        from textworld_express.constants import JAR_PATH

        try:
            port, self.process = launch_gateway(
                classpath=JAR_PATH,
                die_on_exit=True,  # the JVM exits when this process's end of its stdin closes
                cwd=os.path.dirname(JAR_PATH),  # the engine reads its data files from here
                javaopts=["-XX:+UseSerialGC", "-Xss8m"],
                return_proc=True,
            )
        except ValueError as e:  # no port line: the JVM did not start
            raise RuntimeError(
                f"{world}: the TextWorldExpress Java engine did not start ({e}); check that "
                f"`java -version` shows Java 17 or newer ({INSTALL_JAVA})"
            ) from None
        self.gateway = JavaGateway(
            gateway_parameters=GatewayParameters(port=port, auto_field=True),
            java_process=self.process,
        )
        runtime = self.gateway.jvm.textworldexpress.runtime
        self.servers = [runtime.PythonInterface() for _ in range(count)]
        # Stops the JVM when the engine is collected or at interpreter exit, whichever comes
        # first, while modules are still whole (a __del__ at exit ran after `subprocess` was
        # gone and printed "Exception ignored ... TimeoutExpired").
        self._stop = weakref.finalize(self, _stop_jvm, self.gateway, self.process)

    def close(self) -> None:
        """Stops the JVM (closing its stdin; killed if it has not exited within 5 s)."""
        self._stop()  # runs once; later calls do nothing
        self.process = None
        self.servers = []


def _stop_jvm(gateway, process) -> None:
    try:
        gateway.shutdown()
    except Exception:  # noqa: BLE001 - the JVM may already be gone
        pass
    try:
        process.stdin.close()
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait()


def _load(server, game: str, params: str) -> None:
    message = server.load(game, params)
    if message:
        raise WorldOptionError(f"twx/{game}: game options {params!r} refused: {message.strip()}")


def _game_state(server, seed: int, fold: str, gold: bool = False) -> dict:
    return json.loads(server.generateNewGameJSON(int(seed), fold, gold))


def _fold_seeds(server, fold: str) -> np.ndarray:
    getter = {"train": server.getSeedsTrain, "dev": server.getSeedsDev, "test": server.getSeedsTest}
    # One call for the whole list ("[0, 1, ...]") instead of one py4j round trip per element.
    return np.asarray(json.loads(getter[fold]().toString()), np.int64)


# --- game options ----------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def game_params_string(game_params: str = "", **options) -> str:
    """TextWorldExpress's parameter string from a string and/or keyword options.

    Keyword names may be snake_case (`num_locations=5`) or TextWorldExpress's camelCase
    (`numLocations=5`); booleans become 0/1. Keywords override the same key in `game_params`.

    Returns:
      `"key=value,..."` sorted by key, e.g. `"includeDoors=0,numLocations=5"`.
    """
    params: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in game_params.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise WorldOptionError(f"game_params item {item!r} is not key=value")
        params[key.strip()] = value.strip()
    for key, value in options.items():
        params[_camel(key)] = str(int(value)) if isinstance(value, bool) else str(value)
    return ",".join(f"{k}={params[k]}" for k in sorted(params))


def family_name(game: str, params: str, defaults: dict) -> str:
    """Name of the (game, options) family: the game, plus each option that differs from its default,
    e.g. `twx_coin` or `twx_coin-includeDoors=0-numLocations=5`."""
    changed = []
    for item in filter(None, params.split(",")):
        key, _, value = item.partition("=")
        if str(defaults.get(key)) != value:
            changed.append(f"{key}={value}")
    return safe_name("-".join([f"twx_{game}", *changed]))


# --- observations ----------------------------------------------------------------------------


def history_text(commands) -> str:
    """The `history` field: commands of the episode so far, oldest first, joined by commas."""
    return ", ".join(commands)


def _fields(state: dict, task: str, which: tuple[str, ...], history=()) -> list[str]:
    look = state["look"]
    feedback = state["observation"]
    if feedback.strip() == look.strip():
        feedback = ""
    texts = {
        "task": task,
        "history": history_text(history),
        "feedback": feedback,
        "inventory": state["inventory"],
        "look": look,
    }
    return [texts[f] for f in which]


# --- building a family -----------------------------------------------------------------------


def build_family(
    game: str,
    params: str = "",
    seeds_per_fold: int | None = None,
    random_steps: int = BUILD_RANDOM_STEPS,
    engine: TwxEngine | None = None,
    verbose: bool = True,
) -> dict:
    """Plays games of all folds to collect a family's vocabulary and command list.

    For each fold and each of its first `seeds_per_fold` seeds (all 1,000 if None): the game's
    gold path, then a random walk of `random_steps` commands drawn from the valid ones (numpy
    generator seeded with the game seed) from the game's start. Every text seen and every valid
    command goes into the family. TextWorldExpress draws its gold paths at random (the same game
    gives gold paths of different lengths), so two builds can differ slightly: the shipped files
    are the reference.

    Returns:
      dict with `vocabulary` (id -> word), `commands` (sorted), `max_tokens` (longest observation
      seen with the default fields, rounded up to a multiple of 16), and how it was built.
    """
    own = engine is None
    engine = engine or TwxEngine(1, f"twx/{game}")
    server = engine.servers[0]
    started = time.time()
    try:
        _load(server, game, params)
        task_texts, texts, commands = set(), set(), set()
        longest, steps = 0, 0
        for fold in FOLDS:
            seeds = _fold_seeds(server, fold)
            if seeds_per_fold is not None:
                seeds = seeds[:seeds_per_fold]
            for seed in seeds:
                state = _game_state(server, seed, fold, gold=True)
                gold = list(server.getGoldActionSequence())
                task = server.getTaskDescription()
                task_texts.add(task)
                rng = np.random.default_rng(int(seed))
                for walk in (gold, None):
                    if walk is None:
                        state = _game_state(server, seed, fold)
                        walk = range(random_steps)
                    for command in [None, *walk]:
                        if command is not None:
                            if not isinstance(command, str):
                                command = sorted(state["validActions"])
                                command = command[rng.integers(len(command))]
                            state = json.loads(server.stepJSON(command))
                            steps += 1
                        fields = _fields(state, task, OBSERVATION_FIELDS)
                        texts.update(fields[2:])
                        commands.update(state["validActions"])
                        longest = max(longest, sum(len(tokenize(t)) for t in fields) + len(fields) - 1)
                        if state["tasksuccess"] or state["taskfailure"]:
                            break
        vocabulary = Vocabulary.from_texts([*task_texts, *texts, *commands, history_text("ab")])
    finally:
        if own:
            engine.close()
    if verbose:
        print(
            f"twx/{game}: built the family of {params or 'default options'}: "
            f"{len(vocabulary)} words, {len(commands)} commands from {steps} steps "
            f"({time.time() - started:.0f} s)",
            file=sys.stderr,
        )
    return {
        "format": FAMILY_FORMAT,
        "game": game,
        "game_params": params,
        "built_with": {
            "textworld_express": _twx_version(),
            "seeds_per_fold": seeds_per_fold,
            "random_steps": random_steps,
            "steps": steps,
        },
        "max_tokens": -(-longest // 16) * 16,
        "vocabulary": vocabulary.words,
        "commands": sorted(commands),
    }


def _twx_version() -> str:
    from textworld_express.version import __version__

    return __version__


def load_family(game: str, params: str, defaults: dict, engine: TwxEngine) -> tuple[str, dict]:
    """The family file of (game, params): shipped, cached, or built now (minutes) and cached."""
    name = family_name(game, params, defaults)
    family = read_family(name)
    if family is None or family.get("format") != FAMILY_FORMAT:
        print(
            f"twx/{game}: building the vocabulary and command list of family {name} once "
            "(playing 3,000 games; a few minutes); it is cached for later runs",
            file=sys.stderr,
        )
        family = build_family(game, params, engine=engine)
        print(f"twx/{game}: family cached at {write_family(name, family)}", file=sys.stderr)
    return name, family


# --- the world -------------------------------------------------------------------------------


class TwxWorld(HostWorld):
    """N copies of one TextWorldExpress game behind the `HostWorld` interface.

    Build it with `make_twx` (or `worlds.make("twx/<game>")`), which documents the options.

    Attributes:
      vocabulary: token id -> word of this world's family (save it with a run).
      commands: action id -> command text (the same as `spec.action_names`).
      family: name of the family file the vocabulary and commands come from.
      fold: the seed fold episodes are drawn from.
      game_seeds: [N] int64 TextWorldExpress seed of each copy's current game.
      success: [N] bool, whether each copy's last step won its game.
      unlisted_commands: valid commands met while playing that are not in the command list.
    """

    # A run trains on the train fold's games and is evaluated on the held-out test fold's.
    eval_options = {"fold": "test"}

    def __init__(
        self,
        game: str,
        num_envs: int = 1,
        *,
        fold: str = "train",
        max_episode_steps: int = 100,
        max_tokens: int | None = None,
        observation_fields: tuple[str, ...] = OBSERVATION_FIELDS,
        history: int = 4,
        game_params: str = "",
        threads: int | None = None,
        **game_options,
    ):
        name = f"twx/{game}"
        if num_envs < 1:
            raise WorldOptionError(f"{name}: num_envs must be >= 1, got {num_envs}")
        if max_episode_steps < 1:
            raise WorldOptionError(f"{name}: max_episode_steps must be >= 1, got {max_episode_steps}")
        if fold not in FOLDS:
            raise WorldOptionError(f"{name}: fold must be one of {', '.join(FOLDS)}, got {fold!r}")
        observation_fields = tuple(observation_fields)
        if not observation_fields or set(observation_fields) - set(OBSERVATION_FIELDS):
            raise WorldOptionError(
                f"{name}: observation_fields must be a non-empty subset of "
                f"{OBSERVATION_FIELDS}, got {observation_fields}"
            )
        self.num_envs = num_envs
        self.fold = fold
        self.frames = 0
        self.params = game_params_string(game_params, **game_options)
        if history < 0:
            raise WorldOptionError(f"{name}: history must be >= 0, got {history}")
        self._fields_shown = observation_fields
        self.history = history
        threads = min(num_envs, 8) if threads is None else threads
        # py4j gives each Python thread its own connection and the JVM serves each on its own
        # thread, so copies step concurrently (2.4x the steps/s of a sequential loop at 4 copies
        # on 2 cores); the engines share no state (tests/test_text_host_worlds.py checks it).
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._engine = TwxEngine(num_envs, name)
        try:
            servers = self._engine.servers
            _load(servers[0], game, "")
            _game_state(servers[0], 0, "train")
            defaults = json.loads(servers[0].getGenerationPropertiesJSON())
            self._map(lambda server: _load(server, game, self.params), servers)
            self.family, family = load_family(game, self.params, defaults, self._engine)
            self._seeds = _fold_seeds(servers[0], fold)
        except BaseException:
            self.close()
            raise
        self.vocabulary: list[str] = list(family["vocabulary"])
        self.commands: list[str] = list(family["commands"])
        self._vocab = Vocabulary(self.vocabulary)
        self._command_ids = {c: i for i, c in enumerate(self.commands)}
        self.max_tokens, self.spec = token_world_spec(
            name, self.commands, family["max_tokens"], history, observation_fields, max_tokens,
            max_episode_steps, (-1.0, 1.0))
        self.game = game
        self.unlisted_commands: set[str] = set()
        self.game_seeds = np.zeros((num_envs,), np.int64)
        self.success = np.zeros((num_envs,), bool)
        self._rngs = [np.random.default_rng(i) for i in range(num_envs)]
        self._tasks = [""] * num_envs
        self._histories: list[list[str]] = [[] for _ in range(num_envs)]
        self._scores = np.zeros((num_envs,), np.float64)
        self._steps = np.zeros((num_envs,), np.int64)
        self._observation = np.zeros((num_envs, self.max_tokens), np.int32)
        self._mask = np.zeros((num_envs, self.spec.num_actions), bool)
        self._started = False

    # --- per copy ---------------------------------------------------------------------------
    def _map(self, fn, items) -> list:
        if self._pool is None:
            return [fn(x) for x in items]
        return list(self._pool.map(fn, items))

    def _show(self, i: int, state: dict) -> None:
        history = self._histories[i][-self.history :] if self.history else ()
        self._observation[i] = self._vocab.encode(
            _fields(state, self._tasks[i], self._fields_shown, history), self.max_tokens
        )
        self._mask[i] = False
        for command in state["validActions"]:
            index = self._command_ids.get(command)
            if index is None:
                self.unlisted_commands.add(command)
            else:
                self._mask[i, index] = True
        if not self._mask[i].any():  # cannot happen with TextWorldExpress's games; keep acting
            self._mask[i] = True

    def _new_episode(self, i: int) -> None:
        server = self._engine.servers[i]
        seed = int(self._seeds[self._rngs[i].integers(len(self._seeds))])
        state = _game_state(server, seed, self.fold)
        self.game_seeds[i] = seed
        self._tasks[i] = server.getTaskDescription()
        self._scores[i] = 0.0
        self._steps[i] = 0
        self._histories[i] = []
        self._show(i, state)

    def _step_copy(self, copy_and_action: tuple[int, int]) -> tuple[float, bool, bool]:
        """Steps copy i; returns (reward, terminated, truncated), starting its next game if done."""
        i, action = copy_and_action
        command = self.commands[action]
        state = json.loads(self._engine.servers[i].stepJSON(command))
        self._histories[i].append(command)
        score = float(state["score"])
        reward = score - self._scores[i]
        self._scores[i] = score
        self._steps[i] += 1
        self.success[i] = bool(state["tasksuccess"])
        terminated = bool(state["tasksuccess"] or state["taskfailure"] or score >= 1.0)
        truncated = not terminated and bool(self._steps[i] >= self.spec.max_episode_steps)
        if terminated or truncated:
            self._new_episode(i)
        else:
            self._show(i, state)
        return reward, terminated, truncated

    # --- the interface ----------------------------------------------------------------------
    def reset(self, seed: int) -> TimeStep:
        """Starts a fresh episode in every copy; copy i draws its games with seed `seed + i`.

        Returns:
          TimeStep with observation [N, max_tokens] int32, reward [N] float32 zeros, flags [N]
          bool False, action_mask [N, num_actions] bool (the valid commands).
        """
        self._check_open()
        self._rngs = [np.random.default_rng(int(seed) + i) for i in range(self.num_envs)]
        self._map(self._new_episode, range(self.num_envs))
        self.success[:] = False
        self._started = True
        return self._reset_timestep(self._observation.copy(), self._mask.copy())

    def step(self, actions: np.ndarray) -> TimeStep:
        """One command in every copy, auto-resetting finished ones.

        Args:
          actions: [N] integer command ids in `[0, num_actions)`.

        Returns:
          TimeStep: reward [N] float32 (score change) and flags [N] bool of the command just
          taken; observation [N, max_tokens] and action_mask [N, num_actions] are the next
          episode's first ones where an episode ended. `truncated` is False where `terminated`.
        """
        self._check_open()
        if not self._started:
            raise RuntimeError(f"{self.spec.name}: call reset(seed) before step")
        actions = self._check_actions(actions)
        n = self.num_envs
        bad = (actions < 0) | (actions >= self.spec.num_actions)
        if bad.any():
            raise ValueError(
                f"{self.spec.name}: action {actions[bad][0]} out of range "
                f"[0, {self.spec.num_actions})"
            )
        ends = self._map(self._step_copy, enumerate(actions.tolist()))
        reward = np.array([e[0] for e in ends], np.float32)
        terminated = np.array([e[1] for e in ends], bool)
        truncated = np.array([e[2] for e in ends], bool)
        self.frames += n
        return TimeStep(
            observation=self._observation.copy(),
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            action_mask=self._mask.copy(),
        )

    def render(self, observation) -> str:
        """Token ids [max_tokens] -> readable text (fields separated by `|`)."""
        return self._vocab.decode(observation)

    def close(self) -> None:
        """Stops the JVM; the world cannot step afterwards."""
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown()
            self._pool = None
        if getattr(self, "_engine", None) is not None:
            self._engine.close()
            self._engine = None

    def _check_open(self) -> None:
        if self._engine is None:
            raise RuntimeError(f"{self.spec.name}: the world is closed")



def make_twx(game: str, num_envs: int = 1, **options) -> TwxWorld:
    """Builds `num_envs` copies of a TextWorldExpress game (needs the `text` extra and Java).

    Args:
      game: one of `TWX_GAMES`, e.g. `"coin"`, `"cookingworld"`, `"mapreader"`.
      num_envs: parallel copies (engines in one JVM, stepped concurrently from `threads` threads).
      **options: `fold` ("train", "dev" or "test": the seed list episodes are drawn from),
        `max_episode_steps` (100), `max_tokens` (the family's longest observation seen, plus
        room for the history), `observation_fields` (subset of `OBSERVATION_FIELDS`, in order),
        `history` (4: how many past commands the `history` field shows), `threads`
        (min(num_envs, 8); 1 steps the copies in sequence), `game_params`
        (TextWorldExpress's string, e.g. `"numLocations=5,includeDoors=0"`), and any game option
        as a keyword, snake_case or camelCase (`num_locations=5`, `include_doors=False`,
        `num_distractor_items=0`, `num_ingredients=2`, ...).

    Returns:
      A `TwxWorld` with token observations [num_envs, max_tokens] int32 and masked commands.

    Raises:
      UnknownWorldError: for a game TextWorldExpress does not have, listing its games.
      WorldOptionError: for an option or game option the game refuses (with TWX's message).
      MissingExtraError: when `textworld_express` or Java is not installed (naming the fix).
    """
    if game not in TWX_GAMES:
        close = difflib.get_close_matches(game, TWX_GAMES, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(f'twx/{c}' for c in close)}?" if close else ""
        raise UnknownWorldError(
            f"unknown TextWorldExpress game {game!r} (world 'twx/{game}').{hint} "
            f"Games: {', '.join(TWX_GAMES)}."
        )
    return TwxWorld(game, num_envs, **options)


def _main(argv: list[str] | None = None) -> None:
    """`python -m worlds.twx GAME... [--out DIR]`: builds the default-option family files (this is
    how the files in `worlds/data/` were made)."""
    import argparse
    from pathlib import Path

    from worlds.text_tokens import DATA_DIR

    parser = argparse.ArgumentParser(prog="python -m worlds.twx", description=_main.__doc__)
    parser.add_argument("games", nargs="+", choices=TWX_GAMES)
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    parser.add_argument("--seeds-per-fold", type=int, default=None)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for game in args.games:
        family = build_family(game, "", seeds_per_fold=args.seeds_per_fold)
        path = args.out / f"twx_{game}.json"
        with open(path, "w") as f:
            json.dump(family, f, indent=0)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    _main()
