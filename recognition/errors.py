"""Errors raised for bad user input, so CLIs can print them without a stack trace."""


class DataError(ValueError):
    """A data file is missing, truncated, corrupt or not in the expected format.

    The message always names the file and what is wrong with it.
    """
