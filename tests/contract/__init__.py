"""Contract tests shared by every model backend."""
