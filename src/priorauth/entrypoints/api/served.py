"""The app each process of `priorauth serve --workers N` builds for itself.

uvicorn starts the worker processes afresh (spawned, not forked), so each one opens its own
service from the environment the parent prepared: the PRIORAUTH_* variables, with the
command's options written into them. The parent checked the database, the policies and the
port before any worker started, and runs the notification delivery and the audit checkpoints
itself; a worker only answers HTTP.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

__all__ = ["worker_app"]


def worker_app() -> FastAPI:
    """The API over a service opened from the environment (uvicorn's factory)."""
    from priorauth.entrypoints.api import create_app
    from priorauth.entrypoints.logs import configure_logging
    from priorauth.service.config import Settings
    from priorauth.service.runtime import open_service

    settings = Settings.from_env()
    configure_logging(settings.log_format)
    service = open_service(settings, upgrade=False)
    app = create_app(service)
    # As `serve` does for one process: what startup built is kept out of the collector's sight.
    gc.collect()
    gc.freeze()
    return app
