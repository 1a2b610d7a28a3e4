"""Exceptions whose message tells the user what to fix; the command line shows no traceback for them."""


class ConfigError(ValueError):
    """A config value breaks a rule: the message names the key, the rule, the value and the fix."""


class DataError(ValueError):
    """A dataset file or folder is missing, malformed or does not fit the config."""


class DiskFullError(OSError):
    """A write found no room; the message names where the job writes and how to resume."""
