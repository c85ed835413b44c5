"""Training: the one lifelong loop, the methods' runs on it, their records and trained models."""
