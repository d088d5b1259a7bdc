"""The `farm` commands, one module per group; `farm.cli` assembles them into the app."""
