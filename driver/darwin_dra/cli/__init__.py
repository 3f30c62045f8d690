"""The `darwin-dra` command and its subcommands (one module each)."""
