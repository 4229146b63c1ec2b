"""What brings containers back: the record, the one downtime, the lock, safe states."""
