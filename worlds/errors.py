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


def check_options(name: str, target, options: dict, positional: int = 0,
                  passed: dict | None = None) -> None:
    """Raises WorldOptionError unless `options` bind to `target`'s signature
    (`inspect.signature(target).bind`, before calling it): the message names the options it does
    not take and lists those it takes. A target with **kwargs binds any name, and checks its own.
    `positional` counts the leading arguments the caller passes by position, `passed` the
    keywords it passes itself (e.g. `num_envs`); neither is an option."""
    signature = inspect.signature(target)
    passed = dict(passed or {})
    try:
        signature.bind(*([None] * positional), **passed, **options)
        return
    except TypeError as error:
        failure = str(error)
    parameters = list(signature.parameters.values())[positional:]
    accepted = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    taken = [p.name for p in parameters if p.name not in passed
             and (p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD
                                               and p.default is not p.empty))]
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise WorldOptionError(
            f"world {name!r} does not take the option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}; it takes the options {', '.join(taken) or '(none)'}")
    raise WorldOptionError(f"world {name!r}: {failure}; it takes the options "
                           f"{', '.join(taken) or '(none)'}")
