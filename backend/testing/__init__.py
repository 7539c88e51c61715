"""Test-only code (the tiny model builder): in the source tree, not in the wheel (see pyproject)."""
