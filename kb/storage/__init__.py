"""Storage: the Store interface, the plain records that cross it, and its SQLite implementation."""
