"""Serving: the day's cards as one JSON payload per member in a key-value store, and the API over it."""
