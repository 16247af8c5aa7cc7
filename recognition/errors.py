"""Errors raised for bad user input, so CLIs can print them without a stack trace.

Entry points catch `UserError` (and only it) and print `error: ...`; any other exception is a
bug in the toolkit and keeps its traceback. `NonFiniteLoss` (training diverged) is here too, so
the training command can name its exit status without loading MXNet.
"""


class UserError(ValueError):
    """Bad input from the user: a file, a flag or a config value. The message says which."""


class DataError(UserError):
    """A data file is missing, truncated, corrupt or not in the expected format.

    The message always names the file and what is wrong with it.
    """


class ConfigError(UserError):
    """A config file, key or command-line value is unknown, malformed or out of range."""


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; training stops after keeping the last good checkpoint."""
