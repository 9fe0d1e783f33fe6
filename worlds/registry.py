"""Name → world registry. Factories are imported lazily, so `import worlds` stays cheap."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable

from worlds.base import HostWorld, JaxWorld
from worlds.errors import UnknownWorldError, check_options

# name -> "module:callable" (imported on first use) or a callable.
_REGISTRY: dict[str, str | Callable[..., JaxWorld | HostWorld]] = {}
# prefix -> "module:callable" taking (suffix, **options); e.g. "gym:" and "atari/".
_PREFIXES: dict[str, str] = {}


def register(name: str, factory: str | Callable[..., JaxWorld | HostWorld]) -> None:
    """Registers a world factory under `name` (`factory(**options) -> World`)."""
    if name in _REGISTRY:
        raise ValueError(f"world {name!r} is already registered")
    _REGISTRY[name] = factory


def register_prefix(prefix: str, factory: str) -> None:
    """Registers a family of worlds: `make(prefix + x)` calls `factory(x, **options)`."""
    _PREFIXES[prefix] = factory


def names() -> list[str]:
    """All registered world names (families such as `atari/<game>` listed by their games)."""
    listed = sorted(_REGISTRY)
    try:
        from worlds.atari import ATARI_100K_GAMES

        listed += [f"atari/{g}" for g in ATARI_100K_GAMES]
    except ImportError:  # pragma: no cover - atari module is part of the package
        pass
    return listed


def _resolve(factory):
    if callable(factory):
        return factory
    module, attr = factory.split(":")
    return getattr(importlib.import_module(module), attr)


def _factory(name: str):
    """(factory, leading positional args) of a world name, or UnknownWorldError."""
    if name in _REGISTRY:
        return _resolve(_REGISTRY[name]), ()
    prefix = next((p for p in _PREFIXES if name.startswith(p) and len(name) > len(p)), None)
    if prefix is None:
        close = difflib.get_close_matches(name, names(), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownWorldError(
            f"unknown world {name!r}.{hint} Run `dreamer worlds` to list them, or use "
            "'gym:<ID>' for any installed gymnasium env."
        )
    return _resolve(_PREFIXES[prefix]), (name[len(prefix) :],)


def takes_copies(name: str) -> bool:
    """Whether the world `name` is built with a number of copies (`num_envs`: a host world,
    stepped on the host), read from its factory's signature without building it. A JAX world
    is one copy, vmapped by its user."""
    factory, _ = _factory(name)
    return "num_envs" in inspect.signature(factory).parameters


def make(name: str, **options) -> JaxWorld | HostWorld:
    """Builds the world registered as `name`.

    Args:
      name: e.g. `"catch"`, `"cartpole"`, `"minatar/breakout"`, `"atari/pong"`, `"gym:Acrobot-v1"`.
      **options: world options (e.g. `num_envs=8` for host worlds).

    Raises:
      UnknownWorldError: with the closest registered names.
      WorldOptionError: for an option the world does not take.
    """
    factory, args = _factory(name)
    check_options(name, factory, options, positional=len(args))
    return factory(*args, **options)
