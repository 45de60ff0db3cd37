"""The one exception type that means "the user gave us bad input"."""


class InputError(Exception):
    """Bad input from the user: the CLI prints it as one line and exits with code 2.

    Raise it only for problems the user can fix (a missing file, a bad option value,
    a folder that holds another dataset). Bugs must stay ordinary exceptions so that
    they keep their tracebacks.
    """

    exit_code = 2
