"""Errors a command reports as one line (the CLI prints them without a traceback)."""


class UserError(Exception):
    """Base of the errors a user can fix, each with a one-line message (a bad config, a missing
    run, a diverged or failed run, a device layout or memory that does not fit). The CLI prints
    them, and `worlds.errors.WorldError`, without a traceback."""


class TrainingDiverged(UserError, RuntimeError):
    """A non-finite loss or gradient, or a world's non-finite reward or observation; the message
    names the term and the update, or the world and the real step."""


class DeviceLayoutError(UserError, ValueError):
    """The world copies or the batch do not split evenly over the devices."""
