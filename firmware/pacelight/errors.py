"""Errors that reach the user as one line and a non-zero exit status."""


class PacelightError(Exception):
    """Base class for errors reported to the user without a traceback."""

    exit_code = 1


class InputError(PacelightError):
    """Bad input (missing/unsupported file, invalid JSON, ...): exit status 2."""

    exit_code = 2


class ConfigError(PacelightError):
    """Invalid configuration: exit status 2."""

    exit_code = 2
