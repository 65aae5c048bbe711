"""Serve: the REST API and web page over the Engine."""
