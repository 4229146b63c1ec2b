"""salvage's exit codes and the base of its own exceptions.

A `SalvageError` says what went wrong in one line (its str) and carries the exit code
the command line ends with; the CLI's one handler (cli._Salvage) logs it and exits.
"""

from __future__ import annotations

# 0 all volumes backed up; 1 some failed; 2 a configuration, label or usage problem (click's
# own usage errors exit 2 as well).
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class SalvageError(Exception):
    """One line for a person (str(error)), and the exit code it ends salvage with."""

    exit_code = EXIT_FAILED

    def lines(self) -> list:
        """What the CLI logs, one item a line."""
        return [self]
