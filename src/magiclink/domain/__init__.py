"""The domain layer: records, errors, policies and services. Standard library and attrs only.

Its modules are internal; a host imports the same names from `magiclink`, an adapter author
from `magiclink` and `magiclink.ports`.
"""

__all__: list[str] = []
