"""What a run tells: history, metrics, progress, notifications (observers of a run)."""
