"""Exceptions for input the harness rejects before any heavy work."""


class ConfigError(ValueError):
    """A config value breaks a rule: the message names the key, the rule, the value and the fix."""


class DataError(ValueError):
    """A dataset file or folder is missing, malformed or does not fit the config."""
