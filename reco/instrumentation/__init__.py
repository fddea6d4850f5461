"""Instrumentation every step may use: ``timing`` (the ``timer`` that records a stage's
wall time, row counts and Spark work into the run folder) and ``eventlog`` (Spark's event
logs, read back per stage). Below every step; imports nothing of them."""
