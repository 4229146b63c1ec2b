"""One module per CLI action: run, plan, check."""
