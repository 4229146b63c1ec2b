"""Helpers shared by the test suites that use a real engine."""
