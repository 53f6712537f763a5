"""The subcommands of `faced`, one module each (see faced.cli)."""
