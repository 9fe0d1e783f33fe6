"""Name → world registry. Factories are imported lazily, so `import worlds` stays cheap.

What the registry records of each world (or family of worlds, such as `atari/<game>`), so that
its users never name a world's options or build a world just to learn what it is:

* **kind**: `"jax"` (a `JaxWorld`: one copy with pure `reset`/`step`, which its user vmaps) or
  `"host"` (a `HostWorld`: `num_envs` copies stepped on the host). `kind(name)` reads it without
  building the world (so no JVM starts for `twx/<game>` just to learn it is a host world).
* **evaluation options** (host worlds only): options the copies an agent is *evaluated on* get,
  over the user's, for worlds whose held-out episodes differ from the training ones, e.g.
  TextWorldExpress's test fold of game seeds (`fold="test"`): `make(name, evaluation=True)`
  adds them, and `eval_options(name)` reads them without building the world.
* **training options** (host worlds only): options the copies a learner *collects from* get,
  under the user's own (an option the user sets wins), e.g. Atari's `terminal_on_life_loss` and
  `reward_clip`. Evaluation copies never get them: `make(name, training=True)` adds them,
  `make(name)` does not. (A JAX world is evaluated in the programs of its training world, so it
  has no separate evaluation copies and may not declare any.)

`make(name, num_envs=N, training=..., **options)` means the same for every world: "N copies of
`name` will be stepped together". A host world is built with those N copies (`num_envs=N`); a
JAX world is built once, as the one copy its user vmaps over N keys (the JAX collector does) —
so `num_envs` is accepted and checked (>= 1) for a JAX world, but not passed to its factory.

Options are checked before building, by binding them to the factory's signature
(`worlds.errors.check_options`); a family factory that takes `**options` checks its own.

One option is the registry's own, for every world, and never reaches a factory: `history=k`
(default 1) shows the agent the episode's last k observations stacked along their last axis
(`worlds.history`); k = 1 is the world exactly as its factory builds it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import numbers
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Literal

from worlds.base import HostWorld, JaxWorld
from worlds.errors import UnknownWorldError, WorldOptionError, check_options
from worlds.history import check_history, with_history

Kind = Literal["jax", "host"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the registry knows of one world or family.

    Attributes:
      factory: `"module:callable"` (imported on first use) or a callable; `factory(**options)` for
        a world, `factory(suffix, **options)` for a family, plus `num_envs=N` for a host world.
      kind: `"jax"` or `"host"`.
      training_options: options training copies get under the user's (see the module docstring).
      eval_options: options evaluation copies get over the user's (see the module docstring).
      listed: for a family, `"module:attribute"` of the suffixes `names()` lists (e.g. the Atari
        100k games), or None to list none.
    """

    factory: str | Callable[..., JaxWorld | HostWorld]
    kind: Kind
    training_options: Mapping[str, object] = dataclasses.field(default_factory=dict)
    listed: str | None = None
    eval_options: Mapping[str, object] = dataclasses.field(default_factory=dict)


_REGISTRY: dict[str, Entry] = {}
_PREFIXES: dict[str, Entry] = {}


def _entry(factory, kind: str, training_options, listed=None, eval_options=None) -> Entry:
    if kind not in ("jax", "host"):
        raise ValueError(f"a world's kind is 'jax' or 'host', not {kind!r}")
    for what, given in (("training_options", training_options), ("eval_options", eval_options)):
        if kind == "jax" and given:
            # A JAX world's evaluation runs in the programs built for its training world, so
            # it cannot have copies that differ; a host world's evaluation copies are built apart.
            raise ValueError(f"{what} are for host worlds: a JAX world is evaluated in its "
                             "training world")
    return Entry(factory, kind, MappingProxyType(dict(training_options or {})), listed,
                 MappingProxyType(dict(eval_options or {})))


def register(name: str, factory: str | Callable[..., JaxWorld | HostWorld], *,
             kind: Kind = "jax", training_options: Mapping | None = None,
             eval_options: Mapping | None = None) -> None:
    """Registers a world factory under `name` (`factory(**options) -> World`; a host world's
    factory also takes `num_envs`)."""
    if name in _REGISTRY:
        raise ValueError(f"world {name!r} is already registered")
    _REGISTRY[name] = _entry(factory, kind, training_options, eval_options=eval_options)


def register_prefix(prefix: str, factory: str, *, kind: Kind = "host",
                    training_options: Mapping | None = None, listed: str | None = None,
                    eval_options: Mapping | None = None) -> None:
    """Registers a family of worlds: `make(prefix + x)` calls `factory(x, **options)`."""
    _PREFIXES[prefix] = _entry(factory, kind, training_options, listed, eval_options)


def _resolve(ref):
    if not isinstance(ref, str):
        return ref
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def names() -> list[str]:
    """All registered world names (families listed by their `listed` suffixes, e.g. the games of
    `atari/<game>`; a family without a list, such as `gym:<ID>`, lists none)."""
    listed = sorted(_REGISTRY)
    for prefix, entry in _PREFIXES.items():
        if entry.listed is not None:
            listed += [prefix + suffix for suffix in _resolve(entry.listed)]
    return listed


def _lookup(name: str) -> tuple[Entry, tuple]:
    """(entry, leading positional args of its factory) of a world name, or UnknownWorldError."""
    if name in _REGISTRY:
        return _REGISTRY[name], ()
    prefix = next((p for p in _PREFIXES if name.startswith(p) and len(name) > len(p)), None)
    if prefix is None:
        close = difflib.get_close_matches(name, names(), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownWorldError(
            f"unknown world {name!r}.{hint} Run `dreamer worlds` to list them, or use "
            "'gym:<ID>' for any installed gymnasium env."
        )
    return _PREFIXES[prefix], (name[len(prefix):],)


def kind(name: str) -> Kind:
    """`"jax"` or `"host"`: the kind the world `name` is registered as, without building it.

    Raises:
      UnknownWorldError: with the closest registered names.
    """
    return _lookup(name)[0].kind


def training_options(name: str) -> dict:
    """The options the training copies of `name` get under the user's (`make(training=True)`)."""
    return dict(_lookup(name)[0].training_options)


def eval_options(name: str) -> dict:
    """The options the evaluation copies of `name` get over the user's
    (`make(evaluation=True)`), read without building the world."""
    return dict(_lookup(name)[0].eval_options)


def _merged(name: str, entry: Entry, training: bool, evaluation: bool, options: dict) -> dict:
    """The user's options with the world's training or evaluation options (see `make`)."""
    if training and evaluation:
        raise ValueError(f"{name}: a copy is built for training or for evaluation, not both")
    if training:
        options = {**entry.training_options, **options}
    if evaluation:
        options = {**options, **entry.eval_options}
    return dict(options)


def settings(name: str, *, training: bool = False, evaluation: bool = False, **options) -> dict:
    """The complete options a copy of `name` is built with by `make(name, training=...,
    evaluation=..., **options)`, read without building it: the user's, the world's training or
    evaluation options, and every default of the factory's signature (a family factory that
    takes `**options` may declare the signature it checks them against as its `__signature__`,
    as `make_atari` does; otherwise only the options given are known), with `history`.
    A run records these for its evaluation copies (the protocol it was measured under).

    Raises:
      UnknownWorldError, WorldOptionError: as `make` does.
    """
    entry, args = _lookup(name)
    options = _merged(name, entry, training, evaluation, options)
    history = check_history(name, options.pop("history", 1))
    factory = _resolve(entry.factory)
    copies = {"num_envs": 1} if entry.kind == "host" else {}
    check_options(name, factory, options, positional=len(args), passed=copies)
    signature = inspect.signature(factory)
    bound = signature.bind(*args, **copies, **options)
    bound.apply_defaults()
    resolved = {}
    for key, value in list(bound.arguments.items())[len(args):]:
        kind_of = signature.parameters[key].kind
        if kind_of is inspect.Parameter.VAR_KEYWORD:
            resolved.update(value)
        elif key not in copies and kind_of is not inspect.Parameter.VAR_POSITIONAL:
            resolved[key] = value
    return {**resolved, "history": history}


def make(name: str, *, num_envs: int = 1, training: bool = False, evaluation: bool = False,
         **options) -> JaxWorld | HostWorld:
    """Builds the world registered as `name`.

    Args:
      name: e.g. `"catch"`, `"cartpole"`, `"minatar/breakout"`, `"atari/pong"`, `"gym:Acrobot-v1"`.
      num_envs: copies stepped together (>= 1): a host world is built with that many; a JAX world
        is built as one copy, which its user vmaps over `num_envs` keys.
      training: True for the copies a learner collects from: the world's training-only options
        (`training_options(name)`, e.g. Atari's life loss and reward clipping) are added under
        `options`. Evaluation copies are built without them.
      evaluation: True for the copies an agent is evaluated on: the world's evaluation options
        (`eval_options(name)`, e.g. TextWorldExpress's held-out `fold="test"`) replace the
        user's. Not with `training`.
      **options: world options (e.g. `rows=8` for catch, `frame_skip=4` for Atari), and
        `history=k` for any world: observations of the last k steps, stacked along their last
        axis (`worlds.history`; 1, the default, is the world unchanged).

    Raises:
      UnknownWorldError: with the closest registered names.
      WorldOptionError: for an option the world does not take, or `num_envs` < 1.
    """
    entry, args = _lookup(name)
    whole = isinstance(num_envs, numbers.Integral) and not isinstance(num_envs, bool)
    if not whole or num_envs < 1:
        kind_of = "" if whole else " (not an int)"
        raise WorldOptionError(f"{name}: num_envs must be >= 1, got {num_envs!r}{kind_of}")
    num_envs = int(num_envs)
    options = _merged(name, entry, training, evaluation, options)
    history = check_history(name, options.pop("history", 1))
    factory = _resolve(entry.factory)
    copies = {"num_envs": num_envs} if entry.kind == "host" else {}
    check_options(name, factory, options, positional=len(args), passed=copies)
    world = factory(*args, **copies, **options)
    if world.is_jax != (entry.kind == "jax"):
        world.close()
        actual = "jax" if world.is_jax else "host"
        raise TypeError(f"world {name!r} is registered as kind {entry.kind!r} but its factory "
                        f"built a {type(world).__name__}: register it with kind={actual!r}")
    try:
        return with_history(world, history)
    except BaseException:
        world.close()
        raise
