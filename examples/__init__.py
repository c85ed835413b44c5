"""Examples of user code: networks defined outside the library (`--config.model.arch=...`)."""
