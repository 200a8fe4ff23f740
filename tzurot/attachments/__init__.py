"""Attachments: fetching files users send (Discord's CDN) with limits."""

from tzurot.attachments.fetch import FetchError, fetch_attachment, host_allowed

__all__ = ["FetchError", "fetch_attachment", "host_allowed"]
