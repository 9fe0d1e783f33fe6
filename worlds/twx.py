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
description), `history` (the episode's last `history_commands` commands, 4 by default), `feedback` (the
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
import inspect
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

from worlds.errors import MissingExtraError, UnknownWorldError, WorldOptionError
from worlds.text_host import TextHostWorld, Turn, field_texts, history_text
from worlds.text_tokens import Vocabulary, read_family, safe_name, tokenize, write_family

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


def _texts(state: dict, task: str) -> dict[str, str]:
    """The observation fields (but `history`) of TextWorldExpress's state `state`."""
    look = state["look"]
    feedback = state["observation"]
    if feedback.strip() == look.strip():
        feedback = ""
    return {"task": task, "feedback": feedback, "inventory": state["inventory"], "look": look}


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
                        fields = field_texts(_texts(state, task), OBSERVATION_FIELDS)
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


class TwxWorld(TextHostWorld):
    """N copies of one TextWorldExpress game behind the `HostWorld` interface.

    Build it with `make_twx` (or `worlds.make("twx/<game>")`), which documents the options.
    `reset(seed)` has copy i draw its games with a numpy generator seeded with `seed + i`.

    Attributes (besides `TextHostWorld`'s):
      fold: the seed fold episodes are drawn from.
      game_seeds: [N] int64 TextWorldExpress seed of each copy's current game.
    """

    OBSERVATION_FIELDS = OBSERVATION_FIELDS

    def __init__(
        self,
        game: str,
        num_envs: int = 1,
        *,
        fold: str = "train",
        max_episode_steps: int = 100,
        max_tokens: int | None = None,
        observation_fields: tuple[str, ...] = OBSERVATION_FIELDS,
        history_commands: int = 4,
        game_params: str = "",
        threads: int | None = None,
        **game_options,
    ):
        name = f"twx/{game}"
        observation_fields = self._check_options(
            name, num_envs, max_episode_steps, observation_fields, history_commands)
        if fold not in FOLDS:
            raise WorldOptionError(f"{name}: fold must be one of {', '.join(FOLDS)}, got {fold!r}")
        self.game = game
        self.fold = fold
        self.params = game_params_string(game_params, **game_options)
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
            family_name, family = load_family(game, self.params, defaults, self._engine)
            self._seeds = _fold_seeds(servers[0], fold)
        except BaseException:
            self.close()
            raise
        super().__init__(
            name, num_envs, family_name, family, max_episode_steps=max_episode_steps,
            max_tokens=max_tokens, observation_fields=observation_fields,
            history_commands=history_commands,
            reward_range=(-1.0, 1.0))
        self.game_seeds = np.zeros((num_envs,), np.int64)
        self._rngs = [np.random.default_rng(i) for i in range(num_envs)]
        self._tasks = [""] * num_envs

    def _reseed(self, seed: int) -> None:
        self._rngs = [np.random.default_rng(int(seed) + i) for i in range(self.num_envs)]

    def _start_game(self, i: int) -> Turn:
        server = self._engine.servers[i]
        seed = int(self._seeds[self._rngs[i].integers(len(self._seeds))])
        state = _game_state(server, seed, self.fold)
        self.game_seeds[i] = seed
        self._tasks[i] = server.getTaskDescription()
        return Turn(_texts(state, self._tasks[i]), state["validActions"], 0.0)

    def _play(self, i: int, command: str) -> Turn:
        state = json.loads(self._engine.servers[i].stepJSON(command))
        score = float(state["score"])
        won = bool(state["tasksuccess"])
        over = bool(won or state["taskfailure"] or score >= 1.0)
        return Turn(_texts(state, self._tasks[i]), state["validActions"], score, won, over)

    def _release(self) -> None:
        """Stops the JVM."""
        if getattr(self, "_engine", None) is not None:
            self._engine.close()
            self._engine = None


def make_twx(game: str, num_envs: int = 1, **options) -> TwxWorld:
    """Builds `num_envs` copies of a TextWorldExpress game (needs the `text` extra and Java).

    Args:
      game: one of `TWX_GAMES`, e.g. `"coin"`, `"cookingworld"`, `"mapreader"`.
      num_envs: parallel copies (engines in one JVM, stepped concurrently from `threads` threads).
      **options: `fold` ("train", "dev" or "test": the seed list episodes are drawn from),
        `max_episode_steps` (100), `max_tokens` (the family's longest observation seen, plus
        room for the history), `observation_fields` (subset of `OBSERVATION_FIELDS`, in order),
        `history_commands` (4: how many past commands the `history` field shows; the
        registry's own `history` option, for every world, stacks whole observations instead),
        `threads` (min(num_envs, 8); 1 steps the copies in sequence), `game_params`
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


# The options `make_twx` takes are `TwxWorld`'s: declared, so that `worlds.settings` fills in their
# defaults (the protocol a run records) without building a world.
make_twx.__signature__ = inspect.signature(TwxWorld)
