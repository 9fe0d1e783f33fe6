"""Errors a command reports as one line (the CLI prints them without a traceback)."""


class UserError(Exception):
    """Base of the errors a user can fix, each with a one-line message (a bad config, a missing
    run, a diverged or failed run, a device layout or memory that does not fit). The CLI prints
    them, and `worlds.errors.WorldError`, without a traceback."""
