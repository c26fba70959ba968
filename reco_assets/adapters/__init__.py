"""Adapters: foreign event logs (Open CDP clickstream, retail invoices) into the landing zone."""
