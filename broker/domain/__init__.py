"""Pure domain: value objects, enums and rules. Imports only stdlib, msgspec and ``matching``."""
