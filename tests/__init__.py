"""faced's test suite."""
