"""The domain: records, errors, policies and services. Standard library and attrs only."""
