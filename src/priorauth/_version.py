"""The version of the priorauth engine, recorded on every determination."""

__version__ = "0.1.0"
