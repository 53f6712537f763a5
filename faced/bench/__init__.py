"""Benchmarks behind `faced bench …`, one module per subject (figures beside a baseline).

Owns: the measurements `faced bench` runs. Does not own the command line
(faced.commands.bench) or the code measured. Why apart: nothing at run time imports them.
"""
