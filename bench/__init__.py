"""Benchmarks (not tests): accuracy, grid search, publish throughput, scaling. Run each as
``python -m bench.<name>`` from the project root (the make bench-* targets do)."""
