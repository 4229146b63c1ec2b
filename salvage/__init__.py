"""salvage: consistent backups of Docker volumes."""

__version__ = "0.1.0"
