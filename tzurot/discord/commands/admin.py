"""/admin stats | health: for the bot owner (BOT_OWNER_ID) only; anyone else is refused,
ephemerally. `stats`: the queue (waiting, active, scheduled), the servers this process sees,
the characters, and the jobs finished in the last hour and in all (tzurot/moderation/stats.py).
`health`: the very checks GET /health runs (Application.health)."""

from __future__ import annotations

import lightbulb

from tzurot.discord.commands.common import CommandServices, Personalities, is_bot_owner

OWNER_ONLY = "Only the bot's owner can use /admin."


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    admin = lightbulb.Group("admin", "For the bot's owner")

    async def deferred_for_owner(ctx: lightbulb.Context) -> bool:
        """Defer (ephemerally); refuse anyone but the bot's owner. True: go on."""
        await ctx.defer(ephemeral=True)
        if is_bot_owner(services, str(ctx.user.id)):
            return True
        await ctx.edit_response(-1, OWNER_ONLY)
        return False

    @admin.register()
    class AdminStats(lightbulb.SlashCommand, name="stats", description="Queue, servers, jobs"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            if not await deferred_for_owner(ctx):
                return
            stats = services.community.admin_stats
            snap = await stats.snapshot()
            cache = getattr(ctx.client.app, "cache", None)
            servers = len(cache.get_guilds_view()) if cache is not None else "?"
            capped = "+" if snap.last_hour_capped else ""
            await ctx.edit_response(
                -1,
                "**Tzurot stats**\n"
                f"Queue: {snap.waiting} waiting, {snap.active} active, {snap.scheduled} scheduled\n"
                f"Servers (this process's shards): {servers}\n"
                f"Characters: {snap.characters}\n"
                f"Replies finished in the last hour: {snap.last_hour}{capped}\n"
                f"Jobs finished in all: {snap.completed} completed, {snap.failed} failed",
            )

    @admin.register()
    class AdminHealth(lightbulb.SlashCommand, name="health", description="The /health checks"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            if not await deferred_for_owner(ctx):
                return
            health = services.community.health
            checks = await health()
            healthy = all(checks.values())
            lines = [f"**{'Healthy' if healthy else 'Unhealthy'}**"]
            lines += [f"{'✅' if ok else '❌'} {name}" for name, ok in sorted(checks.items())]
            await ctx.edit_response(-1, "\n".join(lines))

    client.register(admin)
