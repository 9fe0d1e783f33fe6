"""Errors of building a world, and the option check: the registry and the worlds raise them, the
CLI prints them as one line. A module of their own, so that a world module does not import the
registry that imports it."""

import inspect


class WorldError(Exception):
    """Base of the errors about a world that a user can fix; the CLI prints them as one line."""


class UnknownWorldError(WorldError, ValueError):
    """Raised for a world name that is not registered."""


class WorldOptionError(WorldError, ValueError):
    """Raised for a world option that the world does not accept."""


class MissingExtraError(WorldError, RuntimeError):
    """Raised when a world needs an optional extra (or a system program) that is not installed;
    the message names what to install."""


def check_options(name: str, target, options: dict, positional: int = 0) -> None:
    """Raises WorldOptionError for options `target`'s signature does not take (by name, before
    calling it), listing those it takes; a target with **kwargs checks its own. `positional`
    counts the leading arguments the caller passes by position (not options)."""
    parameters = list(inspect.signature(target).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    named = parameters[positional:]
    accepted = {p.name for p in named if p.kind is not p.POSITIONAL_ONLY}
    taken = [p.name for p in named
             if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD
                                             and p.default is not p.empty)]
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise WorldOptionError(
            f"world {name!r} does not take the option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}; it takes the options {', '.join(taken) or '(none)'}")
