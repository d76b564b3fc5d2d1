"""The HTTP API."""

from priorauth.entrypoints.api.app import create_app

__all__ = ["create_app"]
