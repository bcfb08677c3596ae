"""User-facing errors: raised for bad input, printed as one line by every CLI."""


class WmsdError(Exception):
    """Bad input from a user or a file (config, image, video, checkpoint).

    CLIs catch it, print ``error: <message>`` on one line and exit with status 2,
    so a person sees what to fix instead of a traceback.
    """


class ConfigError(WmsdError):
    """A config key that does not exist, has the wrong type or an invalid value."""


class InputError(WmsdError):
    """An input file that cannot be read or does not match what the config expects."""


def require(ok: bool, message: str) -> None:
    """Config validation: raise ``ConfigError(message)`` unless ``ok``."""
    if not ok:
        raise ConfigError(message)
