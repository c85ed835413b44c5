"""The compiled computation: training and evaluation steps, and the driver that batches runs."""
