"""Local emulators of external services, for development and tests."""
