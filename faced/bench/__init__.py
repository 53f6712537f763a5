"""Benchmarks behind `faced bench …`, one module per subject (figures beside a baseline)."""
