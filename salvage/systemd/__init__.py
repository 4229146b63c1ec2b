"""salvage as a systemd service: sd_notify progress and watchdog, the logind inhibitor lock,
the timer generator, and schedule checks."""
