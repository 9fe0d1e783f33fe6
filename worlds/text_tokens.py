"""Words to token ids and back, for host text worlds (`twx/...`, `textworld/...`).

A text world turns each observation into a fixed-length int32 vector of token ids over a vocabulary
that is fixed per game family, so a trained model and its saved vocabulary stay valid. Id 0 pads,
id 1 stands for any word outside the vocabulary, id 2 separates the fields of one observation
(task, feedback, inventory, room description). Words are lower-cased runs of letters and digits
(with contractions such as "you're" kept whole); every other visible character is a token of its own.

Vocabularies and command lists are built once per family and kept as JSON files ("family files")
in the package's `worlds/data/` folder (shipped) or in the cache folder (`vocab_cache_dir()`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PAD, UNK, SEP = "<pad>", "<unk>", "<sep>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, SEP)
"""Ids 0, 1, 2 of every text vocabulary."""
PAD_ID, UNK_ID, SEP_ID = 0, 1, 2

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[^\sa-z0-9]")

DATA_DIR = Path(__file__).parent / "data"
"""Family files shipped with the package."""


def tokenize(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks, e.g. `"You see a coin."` ->
    `["you", "see", "a", "coin", "."]`."""
    return _TOKEN.findall(text.lower())


def vocab_cache_dir() -> Path:
    """Folder of family files built on this machine: `$DREAMER_CACHE/vocab` if `DREAMER_CACHE` is
    set, else `~/.cache/dreamer/vocab`."""
    root = os.environ.get("DREAMER_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "dreamer"
    return base / "vocab"


class Vocabulary:
    """A fixed id <-> word table with the three special tokens first.

    Attributes:
      words: id -> word; `words[:3]` are `<pad>`, `<unk>`, `<sep>`.
    """

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if tuple(words[:3]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary starts with {SPECIAL_TOKENS}, got {words[:3]}")
        if len(set(words)) != len(words):
            raise ValueError("a vocabulary lists each word once")
        self.words = words
        self._ids = {w: i for i, w in enumerate(words)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocabulary:
        """The special tokens, then every token of `texts` in sorted order."""
        seen: set[str] = set()
        for text in texts:
            seen.update(tokenize(text))
        seen.difference_update(SPECIAL_TOKENS)
        return cls([*SPECIAL_TOKENS, *sorted(seen)])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, fields: Sequence[str], length: int) -> np.ndarray:
        """Token ids of `fields` joined by `<sep>`, cut or padded with 0 to `length`.

        Args:
          fields: texts of one observation, in order.
          length: number of ids returned.

        Returns:
          [length] int32 ids; words outside the vocabulary become `UNK_ID`.
        """
        ids: list[int] = []
        for i, text in enumerate(fields):
            if i:
                ids.append(SEP_ID)
            ids.extend(self._ids.get(t, UNK_ID) for t in tokenize(text))
        out = np.zeros((length,), np.int32)
        ids = ids[:length]
        out[: len(ids)] = ids
        return out

    def count(self, fields: Sequence[str]) -> int:
        """Number of ids `encode(fields, ...)` needs without cutting."""
        return sum(len(tokenize(t)) for t in fields) + max(len(fields) - 1, 0)

    def decode(self, ids) -> str:
        """Ids -> readable text: padding dropped, `<sep>` as ` | `, punctuation attached."""
        words = [self.words[i] if 0 <= i < len(self.words) else UNK for i in np.ravel(ids)]
        text = " ".join(w for w in words if w != PAD).replace(SEP, "|")
        return re.sub(r" ([.,:;!?)])", r"\1", text)


def read_family(name: str) -> dict | None:
    """The family file `name.json` from the package data, else from the cache; None if neither."""
    for folder in (DATA_DIR, vocab_cache_dir()):
        path = folder / f"{name}.json"
        if path.exists():
            with open(path) as f:
                return json.load(f)
    return None


def write_family(name: str, family: dict) -> Path:
    """Writes `family` to the cache as `name.json` (atomically) and returns its path."""
    folder = vocab_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(family, f, indent=0)
    os.replace(tmp, path)
    return path


def safe_name(text: str) -> str:
    """`text` with every character outside `[A-Za-z0-9._=-]` replaced by `_` (for file names)."""
    return re.sub(r"[^A-Za-z0-9._=-]", "_", text)


def token_world_spec(name: str, commands: Sequence[str], family_max_tokens: int,
                     history_commands: int,
                     observation_fields: Sequence[str], max_tokens: int | None,
                     max_episode_steps: int, reward_range: tuple[float, float]):
    """The WorldSpec of a host text world over a family's fixed command list.

    Without an explicit `max_tokens`, observations are long enough for the family's longest
    observation plus `history_commands` past commands (rounded up to a multiple of 16).

    Returns:
      (max_tokens, spec).
    """
    from worlds.base import WorldSpec

    if max_tokens is None:
        longest_command = max(len(tokenize(c)) for c in commands)
        room = (longest_command + 1) * history_commands if "history" in observation_fields else 0
        max_tokens = family_max_tokens + -(-room // 16) * 16
    max_tokens = int(max_tokens)
    spec = WorldSpec(
        name=name,
        observation_shape=(max_tokens,),
        observation_dtype="int32",
        num_actions=len(commands),
        action_names=tuple(commands),
        max_episode_steps=max_episode_steps,
        observation_kind="tokens",
        frames_per_step=1,
        reward_range=reward_range,
        has_action_mask=True,
    )
    return max_tokens, spec
