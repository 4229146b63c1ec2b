"""Calling a crane: its environment, metadata, actions and the report it writes back.
Its container runs through salvage.engine.cranes; its images' build contexts are in images/."""
