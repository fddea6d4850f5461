"""Keeping a long-running deployment tidy: retention of old runs' files."""
