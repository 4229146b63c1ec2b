"""Find and read the configuration file: --config, then $SALVAGE_CONFIG, then the default."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import sys
from typing import List, Optional

from salvage.config.schema import DEFAULT_PATH, Config
from salvage.config.validate import validate
from salvage.core.model import Problem
from salvage.errors import EXIT_CONFIG, SalvageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib


log = logging.getLogger("salvage")


class ConfigError(SalvageError):
    """The configuration cannot be used; `problems` holds one line per problem."""

    exit_code = EXIT_CONFIG

    def __init__(self, problems: List[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    def lines(self) -> list:
        return list(self.problems)


def _check_mode(path: str, mode: int) -> None:
    """The configuration says which commands run inside containers, as whom, and holds
    credentials (crane env, notification URLs): nobody else may change it, and it is
    better not readable by others either."""
    if mode & stat.S_IWOTH:
        raise ConfigError([Problem(path, "is writable by others: refused (chmod o-w)")])
    if mode & stat.S_IROTH:
        log.warning("%s is readable by others; it may hold credentials (chmod o-r)", path)


def load(path: Optional[str] = None) -> Config:
    """Read and validate the configuration.

    A missing file is an error when it was asked for (--config, $SALVAGE_CONFIG); a missing
    default file means the built-in defaults: tide "daily" with the reference tar crane.
    """
    explicit = path or os.environ.get("SALVAGE_CONFIG")
    path = explicit or DEFAULT_PATH
    try:
        with open(path, "rb") as stream:
            _check_mode(path, os.fstat(stream.fileno()).st_mode)
            raw = tomllib.load(stream)
    except FileNotFoundError:
        if explicit:
            raise ConfigError([Problem(path, "no such file")]) from None
        raw = None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([Problem(path, f"cannot be read: {error}")]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([Problem(path, f"is not valid TOML: {error}")]) from None
    config, problems = validate(raw or {}, path)
    if problems or config is None:
        raise ConfigError(problems)
    return config if raw is not None else dataclasses.replace(config, found=False)
