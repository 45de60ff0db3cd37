"""The exceptions the CLI turns into one line on stderr and an exit code.

Exit codes of `sslx`: 0 done, 2 bad input (`InputError`, and click's usage errors),
3 training diverged (`TrainingDiverged`), 130 interrupted (Ctrl-C or SIGTERM).
"""


class InputError(Exception):
    """Bad input from the user: the CLI prints it as one line and exits with code 2.

    Raise it only for problems the user can fix (a missing file, a bad option value,
    a folder that holds another dataset). Bugs must stay ordinary exceptions so that
    they keep their tracebacks.
    """

    exit_code = 2


class TrainingDiverged(Exception):
    """The training loss became non-finite: not bad input, but a run that blew up (too
    high a learning rate, say). The CLI prints it as one line and exits with code 3; the
    last good checkpoint is kept."""

    exit_code = 3
