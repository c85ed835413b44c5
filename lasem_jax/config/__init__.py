"""Run configuration: defaults, validation and building the model and step from a config."""
