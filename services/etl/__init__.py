"""The etl service."""
