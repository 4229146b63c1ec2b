"""The thin layer that talks to the Docker engine (docker-py's low-level API)."""
