"""A TextWorld game file (made with `tw-make`) as a host world: `textworld/<path to .z8 or .ulx>`.

TextWorld (the optional `text` extra; MIT, but it runs games through the GPL jericho package, so it
stays an optional extra and nothing of it is vendored) plays one generated game. A world runs
`num_envs` copies of it in this process. The game is the same every episode and plays the same
way for the same commands, so `reset(seed)` only restarts it.

Commands. The action set is TextWorld's own superset of the game's admissible commands,
`Game.possible_admissible_commands`: every command template of the game (`take {o} from {c}`, ...)
filled with every entity name whose type fits each slot (a key fits `{o}`). It is fixed for the
game, whatever state it is in. Each step the mask marks the commands TextWorld lists as admissible
now; an admissible command outside the list (none in the games tried) cannot be chosen and is
counted in `world.unlisted_commands`. The game's `.json` file, which `tw-make` writes beside the
game, must be there.

Rewards. TextWorld's `step` returns the cumulative score; the reward of a step is its change.
An episode ends with `terminated` when the game is won or lost, with `truncated` after
`max_episode_steps` commands; `success[i]` tells whether copy i's last step won.

Observations are token ids (`observation_kind="tokens"`) of the fields `objective`, `history`
(the episode's last `history_commands` commands, 4 by default, as in `worlds.twx`), `feedback` (the game's
answer without the prompt and status line; empty where it repeats the room description, and at
the start of an episode), `inventory` and `description` (the room), joined by `<sep>`. The vocabulary is built once per game file (its entity names and descriptions, objective
and commands, plus every text met along the walkthrough and a few seeded random walks) and cached
under `vocab_cache_dir()` by the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import warnings
from pathlib import Path

import numpy as np

from worlds.errors import MissingExtraError
from worlds.text_host import TextHostWorld, Turn, field_texts
from worlds.text_tokens import Vocabulary, read_family, tokenize, write_family

OBSERVATION_FIELDS: tuple[str, ...] = (
    "objective",
    "history",
    "feedback",
    "inventory",
    "description",
)
FAMILY_FORMAT = 1
BUILD_WALKS = 4
BUILD_WALK_STEPS = 50
INSTALL_TEXT_EXTRA = 'pip install -e ".[text]"'


def _import_textworld(world: str):
    try:
        import textworld
    except ImportError:
        raise MissingExtraError(
            f"{world} needs TextWorld (the 'text' extra): {INSTALL_TEXT_EXTRA}"
        ) from None
    return textworld


def clean_feedback(text: str) -> str:
    """The game's answer without the `>` prompt and status line that follow it."""
    text = re.split(r"\n\s*>", "\n" + text, maxsplit=1)[0]
    return text.strip()


def _texts(gs, feedback: str) -> dict[str, str]:
    """The observation fields (but `history`) of TextWorld's game state `gs`."""
    description = gs["description"] or ""
    if feedback.strip() == description.strip():
        feedback = ""
    return {
        "objective": gs["objective"] or "",
        "feedback": feedback,
        "inventory": gs["inventory"] or "",
        "description": description,
    }


def _request_infos(textworld):
    return textworld.EnvInfos(
        admissible_commands=True,
        description=True,
        inventory=True,
        objective=True,
        score=True,
        max_score=True,
        won=True,
        lost=True,
    )


def _start(textworld, path: Path):
    """One interpreter of the game. jericho warns that it cannot detect scores in TextWorld's
    games; TextWorld tracks the score itself, so the warning is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not fully supported")
        return textworld.start(str(path), request_infos=_request_infos(textworld))


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def build_family(path: Path, game, textworld) -> dict:
    """Collects a game's vocabulary: the game's own texts, then what `BUILD_WALKS` seeded random
    walks of `BUILD_WALK_STEPS` commands and the walkthrough show.

    Returns:
      dict with `vocabulary` (id -> word), `commands` (the fixed command list) and `max_tokens`
      (longest observation seen, rounded up to a multiple of 16).
    """
    commands = sorted(set(game.possible_admissible_commands) | set(game.walkthrough or ()))
    texts = [game.objective or "", *commands, ","]
    for info in game.infos.values():
        texts.extend(t for t in (info.name, info.desc, info.adj, info.noun) if t)
    env = _start(textworld, path)
    longest = 0
    try:
        walks = [list(game.walkthrough or ())] + [None] * BUILD_WALKS
        for w, walk in enumerate(walks):
            rng = np.random.default_rng(w)
            gs = env.reset()
            feedback = ""
            for t in range(BUILD_WALK_STEPS if walk is None else len(walk)):
                fields = field_texts(_texts(gs, feedback), OBSERVATION_FIELDS)
                texts.extend(fields)
                longest = max(longest, sum(len(tokenize(f)) for f in fields) + len(fields) - 1)
                if gs["won"] or gs["lost"]:
                    break
                if walk is None:
                    options = sorted(gs["admissible_commands"])
                    command = options[rng.integers(len(options))]
                else:
                    command = walk[t]
                gs, _, _ = env.step(command)
                feedback = clean_feedback(gs.feedback)
            fields = field_texts(_texts(gs, feedback), OBSERVATION_FIELDS)
            texts.extend(fields)
            longest = max(longest, sum(len(tokenize(f)) for f in fields) + len(fields) - 1)
    finally:
        env.close()
    return {
        "format": FAMILY_FORMAT,
        "game_file": path.name,
        "max_tokens": -(-longest // 16) * 16,
        "vocabulary": Vocabulary.from_texts(texts).words,
        "commands": commands,
    }


class TextWorldWorld(TextHostWorld):
    """N copies of one TextWorld game behind the `HostWorld` interface. Build with
    `make_textworld`, which documents the options. `reset(seed)` ignores `seed`: the game is
    deterministic, so it only restarts it.

    Attributes: those of `TextHostWorld`.
    """

    OBSERVATION_FIELDS = OBSERVATION_FIELDS

    def __init__(
        self,
        path: str,
        num_envs: int = 1,
        *,
        max_episode_steps: int = 100,
        max_tokens: int | None = None,
        observation_fields: tuple[str, ...] = OBSERVATION_FIELDS,
        history_commands: int = 4,
    ):
        name = f"textworld/{path}"
        textworld = _import_textworld(name)
        observation_fields = self._check_options(
            name, num_envs, max_episode_steps, observation_fields, history_commands)
        game_path = Path(path).expanduser()
        if not game_path.is_file():
            raise FileNotFoundError(
                f"{name}: no game file {str(game_path)!r}; make one with e.g. `tw-make custom "
                "--world-size 3 --nb-objects 5 --quest-length 3 --seed 1 --output game.z8`"
            )
        json_path = game_path.with_suffix(".json")
        if not json_path.is_file():
            raise FileNotFoundError(
                f"{name}: {str(json_path)!r} is missing; TextWorld needs the .json file that "
                "tw-make writes beside the game to list admissible commands"
            )
        from textworld.generator.game import Game

        game = Game.load(str(json_path))
        family_name = f"textworld_{_file_digest(game_path)}"
        family = read_family(family_name)
        if family is None or family.get("format") != FAMILY_FORMAT:
            family = build_family(game_path, game, textworld)
            write_family(family_name, family)
        super().__init__(
            name, num_envs, family_name, family, max_episode_steps=max_episode_steps,
            max_tokens=max_tokens, observation_fields=observation_fields,
            history_commands=history_commands,
            reward_range=(-float(game.max_score), float(game.max_score)))
        self._envs = []
        try:
            for _ in range(num_envs):
                self._envs.append(_start(textworld, game_path))
        except BaseException:
            self.close()
            raise

    def _start_game(self, i: int) -> Turn:
        gs = self._envs[i].reset()
        return Turn(_texts(gs, ""), gs["admissible_commands"] or (), float(gs["score"] or 0))

    def _play(self, i: int, command: str) -> Turn:
        gs, score, done = self._envs[i].step(command)
        won = bool(gs["won"])
        return Turn(_texts(gs, clean_feedback(gs.feedback)), gs["admissible_commands"] or (),
                    float(score), won, bool(won or gs["lost"] or done))

    def _release(self) -> None:
        """Closes every copy's game interpreter."""
        envs, self._envs = getattr(self, "_envs", None), None
        for env in envs or ():
            env.close()


def make_textworld(path: str, num_envs: int = 1, **options) -> TextWorldWorld:
    """Builds `num_envs` copies of the TextWorld game at `path` (needs the `text` extra).

    Args:
      path: a `.z8` or `.ulx` game made with `tw-make` (its `.json` beside it).
      num_envs: parallel copies (interpreters in this process, stepped in sequence).
      **options: `max_episode_steps` (100), `max_tokens` (the game's longest observation seen
        when its vocabulary was built, plus room for the history), `observation_fields` (subset of
        `OBSERVATION_FIELDS`), `history_commands` (4: how many past commands the `history` field
        shows; the registry's own `history` option, for every world, stacks whole observations
        instead).

    Returns:
      A `TextWorldWorld` with token observations [num_envs, max_tokens] int32 and masked commands.

    Raises:
      MissingExtraError: when `textworld` is not installed (naming the fix).
      FileNotFoundError: for a missing game file or its missing `.json`.
    """
    return TextWorldWorld(path, num_envs, **options)


# The options `make_textworld` takes are `TextWorldWorld`'s: declared, so that `worlds.settings` fills in their
# defaults (the protocol a run records) without building a world.
make_textworld.__signature__ = inspect.signature(TextWorldWorld)
