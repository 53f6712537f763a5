"""Placeholder: the Open Face v1 protocol routes (being written)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the Open Face routes and their components on ``app``."""
