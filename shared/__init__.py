"""The amazon-reviews-nlp shared package: event models, storage layout, publisher, ledger, settings."""
