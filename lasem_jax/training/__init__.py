"""The lifelong loop of the LASEM family, its records, state, and trained models."""
