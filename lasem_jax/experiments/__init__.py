"""Experiments made of many runs: studies."""
