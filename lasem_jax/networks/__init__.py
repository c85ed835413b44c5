"""Networks: layers, blocks, architectures, base learners, the model, consolidation."""
