"""Pure decisions: the model, labels, grouping, planning and results. Imports only
salvage.errors and salvage.config's schema."""
