"""A Discord message's attachments as the generation request carries them (references only:
the bytes are fetched by the worker, from Discord's CDN, with its limits)."""

from __future__ import annotations

import hikari
from pydantic import ValidationError

from tzurot.ai.contracts import MAX_ATTACHMENTS
from tzurot.attachments.models import AttachmentRef
from tzurot.logs import get_logger

log = get_logger(__name__)


def attachment_refs(message: hikari.PartialMessage) -> tuple[AttachmentRef, ...]:
    attachments = message.attachments if message.attachments is not hikari.UNDEFINED else ()
    flags = message.flags if message.flags is not hikari.UNDEFINED else None
    voice = bool(flags is not None and flags & hikari.MessageFlag.IS_VOICE_MESSAGE)
    refs: list[AttachmentRef] = []
    for attachment in list(attachments)[:MAX_ATTACHMENTS]:
        try:
            refs.append(
                AttachmentRef(
                    id=str(attachment.id),
                    url=attachment.url,
                    filename=attachment.filename or "file",
                    content_type=attachment.media_type,
                    size=max(int(attachment.size or 0), 0),
                    voice=voice,
                    duration_s=attachment.duration,
                )
            )
        except ValidationError:
            log.info("an attachment could not be read from the message; skipped")
    return tuple(refs)
