"""`UsageError`: something the person starting the emulator must fix (a bad flag, a port in use,
an unreachable upstream). Raised by whatever finds it; `emulator.cli.main` prints its message
without a traceback and exits with status 2.

It lives here, not in `emulator.cli`, so that the modules the command line uses can raise it
without importing the command line (which would make an import cycle).
"""


class UsageError(Exception):
    """Something the person starting the emulator must fix; printed without a traceback."""
