"""Shared fixtures; each group lives in its own module, registered here as a plugin."""

pytest_plugins = ["tests.store_fixtures", "tests.emulator_fixtures", "tests.email_fixtures"]
