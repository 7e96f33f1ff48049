"""The receiver service."""
