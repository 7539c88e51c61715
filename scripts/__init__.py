"""Developer scripts (setup, tiny test model builder, benchmarks); importable for tests."""
