"""The reply actions, as message commands (right-click a reply > Apps): `Regenerate`, `Delete
reply`, `View reasoning` and `Inspect`. Every answer is ephemeral.

Who may do what (a reply's record, tzurot/discord/replies.py, says whose turn it answered):
  Regenerate, Delete reply   the author of the triggering message, the character's owner, a
                             moderator (Manage Messages here) or the bot's owner (BOT_OWNER_ID)
  View reasoning             the author of the triggering message
  Inspect                    the author of the triggering message or a moderator
A message that is not one of our replies (or whose record is over 24 h old) gets a plain answer.
"""

from __future__ import annotations

import hashlib

import hikari
import lightbulb

from tzurot.discord.commands.common import CommandServices, Personalities, fit, has_permission
from tzurot.discord.commands.common import is_bot_owner as _is_bot_owner
from tzurot.discord.delivery.errors import DeliveryError
from tzurot.discord.replies import ReplyRecord
from tzurot.logs import get_logger

log = get_logger(__name__)

REGENERATE = "Regenerate"
DELETE = "Delete reply"
REASONING = "View reasoning"
INSPECT = "Inspect"

NOT_OURS = (
    "That isn't one of my characters' replies, or it is over 24 hours old: I keep what these "
    "actions need for 24 hours."
)
UNAVAILABLE = "Reply actions aren't available right now."
BUSY = "That reply is already being regenerated or deleted. Try again in a moment."
MODERATOR = hikari.Permissions.MANAGE_MESSAGES


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    del known  # no personality option: the target message names the character

    async def found(ctx: lightbulb.Context, target: hikari.Message) -> ReplyRecord | None:
        """Defers (ephemerally), then the reply's record, or None after saying why not."""
        await ctx.defer(ephemeral=True)
        replies = services.path.replies
        if replies is None:
            await ctx.edit_response(-1, UNAVAILABLE)
            return None
        record = await replies.of_message(str(target.id))
        if record is None:
            await ctx.edit_response(-1, NOT_OURS)
        return record

    async def may_change(ctx: lightbulb.Context, record: ReplyRecord) -> bool:
        user_id = str(ctx.user.id)
        if user_id == record.requester_id or _is_bot_owner(services, user_id):
            return True
        if has_permission(ctx, MODERATOR):
            return True
        current = await services.personalities.get(record.personality)
        owner = current.owner_id if current is not None else record.owner_id
        return owner is not None and owner == user_id

    def requester(record: ReplyRecord) -> str:
        return f"<@{record.requester_id}>"

    def only_they_may(verb: str, record: ReplyRecord) -> str:
        return (
            f"Only {requester(record)} (whose message this answers), "
            f"**{record.personality_name}**'s owner or a moderator can {verb} this reply."
        )

    @client.register()
    class Regenerate(lightbulb.MessageCommand, name=REGENERATE):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            record = await found(ctx, self.target)
            if record is None:
                return
            if not await may_change(ctx, record):
                await ctx.edit_response(-1, only_they_may("regenerate", record))
                return
            refusal = await services.path.admit_chat(ctx.interaction, record.request.personality)
            if refusal is not None:
                await ctx.edit_response(-1, refusal)
                return
            replies = services.path.replies
            assert replies is not None
            if not await replies.begin(record.job_id, "regenerate"):
                await ctx.edit_response(-1, BUSY)
                return
            request_id = regenerate_request_id(str(ctx.interaction.id), record.personality)
            try:
                job_id = await services.path.regenerate(record, request_id)
            except Exception:
                await replies.end(record.job_id)
                raise
            if job_id is None:
                await replies.end(record.job_id)
                await ctx.edit_response(
                    -1,
                    "This reply can't be regenerated any more: it answered a `/chat` that "
                    "Discord no longer lets me edit. Use `/chat` again.",
                )
                return
            await ctx.edit_response(
                -1, f"Regenerating **{record.personality_name}**'s reply: it changes in place."
            )

    @client.register()
    class DeleteReply(lightbulb.MessageCommand, name=DELETE):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            record = await found(ctx, self.target)
            if record is None:
                return
            if not await may_change(ctx, record):
                await ctx.edit_response(-1, only_they_may("delete", record))
                return
            replies = services.path.replies
            assert replies is not None
            if not await replies.begin(record.job_id, "delete"):
                await ctx.edit_response(-1, BUSY)
                return
            try:
                await services.path.delete_reply(record)
            except DeliveryError as error:
                log.info("could not delete a reply", category=error.category)
                await ctx.edit_response(
                    -1, "Discord didn't let me delete that reply. Nothing was forgotten."
                )
                return
            finally:
                await replies.end(record.job_id)
            await ctx.edit_response(
                -1,
                f"Deleted **{record.personality_name}**'s reply; it is gone from the "
                "conversation history and from memory too.",
            )

    @client.register()
    class ViewReasoning(lightbulb.MessageCommand, name=REASONING):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            record = await found(ctx, self.target)
            if record is None:
                return
            if str(ctx.user.id) != record.requester_id:
                await ctx.edit_response(
                    -1,
                    f"Only {requester(record)}, whose message this answers, can see the "
                    "reasoning behind it.",
                )
                return
            if not record.thinking:
                await ctx.edit_response(
                    -1,
                    f"No reasoning is stored for this reply: **{record.personality_name}**'s "
                    "model didn't share any.",
                )
                return
            await ctx.edit_response(-1, reasoning_text(record))

    @client.register()
    class Inspect(lightbulb.MessageCommand, name=INSPECT):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            record = await found(ctx, self.target)
            if record is None:
                return
            if str(ctx.user.id) != record.requester_id and not has_permission(ctx, MODERATOR):
                await ctx.edit_response(
                    -1,
                    f"Only {requester(record)}, whose message this answers, or a moderator "
                    "can inspect this reply.",
                )
                return
            await ctx.edit_response(-1, inspect_text(record))


def regenerate_request_id(interaction_id: str, slug: str) -> str:
    """One per click (a replayed interaction maps onto the same job)."""
    return f"regen-{interaction_id}-{hashlib.sha256(slug.encode()).hexdigest()[:12]}"


def reasoning_text(record: ReplyRecord) -> str:
    head = f"**{record.personality_name}'s reasoning** (not shown in the reply):\n"
    body = (record.thinking or "").strip()
    quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
    return fit(head + quoted)


def inspect_text(record: ReplyRecord) -> str:
    lines = [f"**Inspect: {record.personality_name}'s reply**"]
    if record.status != "completed":
        lines.append(
            f"Status: failed ({record.failure_category or 'unknown'}"
            + (f"; ref: {record.reference_id}" if record.reference_id else "")
            + ")"
        )
    model = record.target_model or record.model or "unknown"
    named = ""
    if record.model is not None and record.model != model:
        named = f"; the provider called it `{record.model}`"
    lines.append(f"Model: `{model}` (provider: `{record.provider or 'unknown'}`{named})")
    tokens_in = "?" if record.prompt_tokens is None else str(record.prompt_tokens)
    tokens_out = "?" if record.completion_tokens is None else str(record.completion_tokens)
    latency = "?" if record.latency_ms is None else f"{record.latency_ms / 1000:.2f} s"
    lines.append(
        f"Tokens: {tokens_in} in / {tokens_out} out · Latency: {latency} · "
        f"Attempts: {record.attempts} · Streamed: {'yes' if record.streamed else 'no'}"
    )
    if record.settings_used:
        lines.append("Settings (value, and where it came from):")
        for key in sorted(record.settings_used):
            source = record.settings_sources.get(key, "?")
            lines.append(f"• `{key}` = `{record.settings_used[key][:80]}` ({source})")
    if record.memories_used:
        lines.append(f"Memories used ({len(record.memories_used)}):")
        lines.extend(f"• {_one_line(m)[:160]}" for m in record.memories_used)
    else:
        lines.append("Memories used: none")
    lines.append(f"Answered <t:{int(record.finished_at.timestamp())}:R>; kept for 24 hours.")
    return fit("\n".join(lines))


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = [
    "DELETE",
    "INSPECT",
    "REASONING",
    "REGENERATE",
    "inspect_text",
    "reasoning_text",
    "register",
]
