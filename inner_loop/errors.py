"""The one exception type for bad user input anywhere in the project."""


class ConfigError(ValueError):
    """Bad user input. The message is one line naming the bad value and what is allowed."""
