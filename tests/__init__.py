"""The unit tests (tests/e2e: the end-to-end tier); run from the repository root."""
