"""Errors a command reports as one line (the CLI prints them without a traceback)."""


class UserError(Exception):
    """An error with a one-line message for the user."""
