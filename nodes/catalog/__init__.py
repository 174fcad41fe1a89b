"""A catalog replica: the books in its own SQLite database, kept consistent with its peers."""
