"""salvage's configuration file: schema (`schema`), reading (`load`), checking (`validate`)."""

from salvage.config.load import ConfigError, load
from salvage.config.schema import Config, Crane, Tide

__all__ = ["Config", "ConfigError", "Crane", "Tide", "load"]
