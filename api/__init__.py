"""Loop's HTTP API (Falcon WSGI)."""
