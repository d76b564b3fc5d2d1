"""Adapters: translations between priorauth's contracts and the outside world (FHIR, ...)."""
