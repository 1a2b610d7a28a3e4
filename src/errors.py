"""Exceptions whose message names what to fix. The command line prints them without a traceback."""


class ConfigError(ValueError):
    """A config value breaks a rule: the message names the key, the rule, the value and the fix."""


class DataError(ValueError):
    """A dataset file or folder is missing, malformed or does not fit the config."""


class DiskFullError(OSError):
    """A write found no room; the message names where the job writes and how to resume."""
