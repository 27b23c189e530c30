"""The one error type for configuration: commands turn it into exit code 2 without a traceback."""


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and the file or variable it came from."""
