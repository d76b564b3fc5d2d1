"""Adapters: the outside world (databases, FHIR, SQL backends) behind plain interfaces."""
