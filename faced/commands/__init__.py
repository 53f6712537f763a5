"""The subcommands of `faced`, one module each (see faced.cli).

Each owns its arguments and what it prints, not the work (the daemon, faced.vision, …).
Why: a command imports its heavy dependencies only when it runs.
"""
