"""Files: workdir names, tree and JSON formats, checkpoints, the workdir lock."""
