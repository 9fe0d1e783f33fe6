"""Errors of building a world: the registry and the worlds raise them, the CLI prints them as one
line. A module of their own, so that a world module does not import the registry that imports it."""


class WorldError(Exception):
    """Base of the errors about a world that a user can fix; the CLI prints them as one line."""


class UnknownWorldError(WorldError, ValueError):
    """Raised for a world name that is not registered."""


class WorldOptionError(WorldError, ValueError):
    """Raised for a world option that the world does not accept."""


class MissingExtraError(WorldError, RuntimeError):
    """Raised when a world needs an optional extra (or a system program) that is not installed;
    the message names what to install."""
