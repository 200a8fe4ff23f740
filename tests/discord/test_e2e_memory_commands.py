"""End to end through the emulator: every /memory command, as its user sees it, and what it
must never do (show or delete another user's memories, name another server, touch history)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import DiscordEmulator
from tests.emulator.components import buttons, selects
from tests.emulator.models import Channel, Interaction, Message, User
from tests.fixtures.fake_llm import FakeLLM
from tzurot.app import Application
from tzurot.memory.models import MemoryRecord
from tzurot.memory.service import Exchange, MemoryService

pytestmark = pytest.mark.timeout(120)

NOVA = 'name = "Nova"\ndisplay_name = "Nova"\nsystem_prompt = "You are Nova."\n'
LONG = "Bartholomew the Magnificent"  # a slug too long to go into custom ids as it is
LONG_SLUG = "bartholomew-the-magnificent"
LILITH = "Lilith the Wise"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def nova(personalities_dir: Path) -> None:
    (personalities_dir / "nova.toml").write_text(NOVA)


@pytest.fixture
def long_named(personalities_dir: Path) -> None:
    (personalities_dir / "bart.toml").write_text(
        f'name = "{LONG}"\nsystem_prompt = "You are Bartholomew."\n'
    )


async def start(start_bot: Any, **env: str) -> Application:
    app: Application = await start_bot(MEMORY_ENABLED="true", **env)
    return app


def memory_of(app: Application) -> MemoryService:
    assert app.memory is not None
    return app.memory


async def run(
    emu: DiscordEmulator, user: User, name: str, options: dict[str, Any] | None = None,
    channel: Channel | None = None,
) -> Interaction:  # fmt: skip
    interaction = await emu.slash_command(channel or emu.channel, user, name, options)
    await interaction.wait_for_content(timeout=10)
    assert interaction.original is not None and interaction.original.is_ephemeral, name
    return interaction


async def say(
    emu: DiscordEmulator, user: User, name: str, options: dict[str, Any] | None = None,
    channel: Channel | None = None,
) -> str:  # fmt: skip
    interaction = await run(emu, user, name, options, channel)
    assert interaction.original is not None
    return interaction.original.content


async def seed(
    app: Application, user: User, n: int, text: str, *, venue: str, personality: str = "lilith",
    name: str = LILITH,
) -> MemoryRecord:  # fmt: skip
    """A memory stored as the `memory-` job would, `n` hours after START."""
    record = await memory_of(app).remember(
        Exchange(
            job_id=f"llm-{uuid.uuid4()}", user_id=str(user.id), user_name=user.username,
            personality=personality, personality_name=name, venue=venue,
            user_text=text, reply_text=f"noted: {text}", at=START + timedelta(hours=n),
        )
    )  # fmt: skip
    assert record is not None
    return record


def short(record: MemoryRecord) -> str:
    return record.id.removeprefix("m-")[:8]


async def updated(interaction: Interaction, before: str) -> Message:
    """The clicked message once its content changed from `before`."""
    await interaction.wait_for_response()
    message = interaction.message
    assert message is not None
    async with asyncio.timeout(10):
        while message.content == before:
            await asyncio.sleep(0.05)
    return message


async def click(emu: DiscordEmulator, message: Message, label: str, user: User) -> Message:
    button = next(b for b in buttons(message) if b["label"] == label)
    before = message.content
    return await updated(await emu.click(message, button["custom_id"], user), before)


async def pick(emu: DiscordEmulator, message: Message, value: str, user: User) -> Message:
    (menu,) = selects(message)
    before = message.content
    return await updated(await emu.select(message, menu["custom_id"], [value], user), before)


async def wait_memories(app: Application, user: User, count: int) -> list[MemoryRecord]:
    async with asyncio.timeout(20):
        while True:
            records, total = await memory_of(app).browse(str(user.id), "lilith", offset=0, limit=50)
            if total >= count:
                return records
            await asyncio.sleep(0.05)


async def chat(emu: DiscordEmulator, user: User, text: str, replies: int) -> None:
    await emu.post_message(emu.channel, user, f"@Lilith {text}")
    async with asyncio.timeout(20):
        while len([m for m in emu.bot_messages(emu.channel) if m.webhook_id]) < replies:
            await asyncio.sleep(0.05)


# -- browse --------------------------------------------------------------------------------------


async def test_browse_pages_own_memories_newest_first_and_where_they_were_made(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    secret = emu.add_guild("Secret Hideout")
    emu.add_text_channel(secret, "lair")
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    app = await start(start_bot)
    here = f"guild:{emu.guild.id}"
    mine = [await seed(app, alice, n, f"alice fact number {n}", venue=here) for n in range(6)]
    in_dms = await seed(app, alice, 10, "a secret told in dms", venue="dm")
    elsewhere = await seed(app, alice, 11, "said in the hideout", venue=f"guild:{secret.id}")
    await seed(app, bob, 12, "bob's own private thing", venue=here)

    browsing = await run(emu, alice, "memory browse")
    assert browsing.original is not None
    page = browsing.original.content
    assert "Your memories with Lilith the Wise" in page and "8, newest first" in page
    assert "page 1 of 2" in page
    # Newest first: the hideout, the DM, then alice's latest.
    assert page.index(short(elsewhere)) < page.index(short(in_dms)) < page.index(short(mine[5]))
    assert "another server" in page and "DMs" in page and "this server" in page
    assert "Secret Hideout" not in page and str(secret.id) not in page
    assert "bob's own private thing" not in page
    assert f"<t:{int(elsewhere.at.timestamp())}:d>" in page  # each with its date

    second = await click(emu, browsing.original, "Next ▶", alice)
    assert "page 2 of 2" in second.content and short(mine[0]) in second.content
    assert "alice fact number 0" in second.content

    # Lock one through the menu; the list marks it.
    shown = await pick(emu, second, mine[0].id, alice)
    assert f"Memory `{short(mine[0])}`" in shown.content and "Unlocked" in shown.content
    locked = await click(emu, shown, "Lock", alice)
    assert "Locked." in locked.content
    record = await memory_of(app).get(str(alice.id), "lilith", mine[0].id)
    assert record is not None and record.locked
    back = await click(emu, locked, "◀ Your memories", alice)
    assert "🔒 locked" in back.content

    # Delete one from its view.
    shown = await pick(emu, back, mine[1].id, alice)
    gone = await click(emu, shown, "Delete", alice)
    assert f"Deleted memory `{short(mine[1])}`" in gone.content
    assert await memory_of(app).get(str(alice.id), "lilith", mine[1].id) is None

    # Bob sees only his own.
    bobs = await say(emu, bob, "memory browse")
    assert "bob's own private thing" in bobs and "alice" not in bobs


async def test_browse_names_the_character_when_there_are_several(
    discord_emulator: DiscordEmulator, start_bot: Any, nova: None
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    app = await start(start_bot)
    here = f"guild:{emu.guild.id}"

    assert "no memories yet" in await say(emu, alice, "memory browse")
    assert "no memories yet" in await say(emu, alice, "memory facts")
    await seed(app, alice, 1, "about lilith", venue=here)
    assert "about lilith" in await say(emu, alice, "memory browse")  # the only one
    await seed(app, alice, 2, "about nova", venue=here, personality="nova", name="Nova")

    several = await say(emu, alice, "memory browse")
    assert "several characters" in several and "Nova" in several and LILITH in several
    only_nova = await say(emu, alice, "memory browse", {"personality": "Nova"})
    assert "about nova" in only_nova and "about lilith" not in only_nova
    assert "don't know anyone" in await say(
        emu, alice, "memory browse", {"personality": "`nobody` @everyone"}
    )

    suggested = await emu.autocomplete(
        emu.channel, alice, "memory browse", {"personality": "no"}, focused="personality"
    )
    await suggested.wait_for_response()
    assert [c["name"] for c in suggested.choices or []] == ["Nova"]


# -- search ------------------------------------------------------------------------------------


async def test_search_finds_own_memories_and_survives_odd_queries(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    app = await start(start_bot)
    here = f"guild:{emu.guild.id}"
    cat = await seed(app, alice, 1, "my cat is named Miso and loves tuna", venue=here)
    await seed(app, alice, 2, "I work as a lighthouse keeper", venue="dm")
    await seed(app, bob, 3, "my cat is named Miso too, says bob", venue=here)

    found = await say(emu, alice, "memory search", {"query": "cat named Miso"})
    assert "most like" in found and short(cat) in found.splitlines()[1]  # the best first
    assert "says bob" not in found

    odd = "`@everyone <@123>` ||spoiler|| " + "ž" * 120 + " \u202e\u0000 cat"
    odd_answer = await say(emu, alice, "memory search", {"query": odd[:300]})
    assert "most like" in odd_answer or "Nothing of your memories" in odd_answer
    assert "Type some words" in await say(emu, alice, "memory search", {"query": "  ?!  "})
    assert "Nothing of your memories" in await say(
        emu, alice, "memory search", {"query": "quantum zeppelin"}
    )

    fake_llm.fail_embeddings(10)
    assert "embedding model" in await say(emu, alice, "memory search", {"query": "cat"})


# -- delete --------------------------------------------------------------------------------------


async def test_delete_by_short_id_and_never_another_users(
    discord_emulator: DiscordEmulator, start_bot: Any, nova: None
) -> None:
    emu = discord_emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    app = await start(start_bot)
    here = f"guild:{emu.guild.id}"
    first = await seed(app, alice, 1, "the first memory", venue=here)
    second = await seed(app, alice, 2, "the nova memory", venue=here, personality="nova",
                        name="Nova")  # fmt: skip
    bobs = await seed(app, bob, 3, "bob's memory", venue=here)

    # Without `personality`, the id is looked for among all of alice's characters.
    forgot = await say(emu, alice, "memory delete", {"memory": short(second)})
    assert f"Forgot memory `{short(second)}` with **Nova**" in forgot
    assert "/history clear" in forgot
    assert await memory_of(app).get(str(alice.id), "nova", second.id) is None

    for stolen in (short(bobs), bobs.id):
        refused = await say(emu, alice, "memory delete", {"memory": stolen})
        assert "You have no memory" in refused
    assert await memory_of(app).get(str(bob.id), "lilith", bobs.id) is not None
    for odd in ("ab", "../../etc", "m-", "*", "`;DROP`", "x" * 64):
        assert "You have no memory" in await say(emu, alice, "memory delete", {"memory": odd})
    assert "You have no memory" in await say(
        emu, alice, "memory delete", {"memory": short(first), "personality": "Nova"}
    )
    assert await memory_of(app).get(str(alice.id), "lilith", first.id) is not None

    # Autocomplete offers alice's own recent memories, by full id.
    await seed(app, alice, 4, "another lilith memory", venue=here)
    suggested = await emu.autocomplete(
        emu.channel, alice, "memory delete", {"memory": ""}, focused="memory"
    )
    await suggested.wait_for_response()
    values = [c["value"] for c in suggested.choices or []]
    assert first.id in values and bobs.id not in values
    assert "Forgot memory" in await say(emu, alice, "memory delete", {"memory": first.id})
    assert await memory_of(app).get(str(alice.id), "lilith", first.id) is None


# -- purge and history -----------------------------------------------------------------------


async def test_purge_needs_the_typed_name_and_keeps_channel_history(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    app = await start(start_bot)
    assert "no memories or facts to purge" in await say(emu, alice, "memory purge")

    await chat(emu, alice, "remember that my boat is called Wavedancer", 1)
    await wait_memories(app, alice, 1)  # the `memory-` job stored the exchange
    await memory_of(app).put_fact(
        str(alice.id), "lilith", key="boat_name", text="Alice's boat is Wavedancer",
        venue=f"guild:{emu.guild.id}",
    )  # fmt: skip
    await seed(app, bob, 1, "bob keeps his", venue=f"guild:{emu.guild.id}")

    asking = await emu.slash_command(emu.channel, alice, "memory purge", {"personality": "lil"})
    modal = await asking.wait_for_modal()
    assert "confirm" in modal.fields
    wrong = await emu.submit_modal(asking, {"confirm": "PURGE"})  # the name is asked for
    assert "did not match" in await wrong.wait_for_content(timeout=10)
    assert await memory_of(app).count(str(alice.id), "lilith") == 1

    asking = await emu.slash_command(emu.channel, alice, "memory purge", {"personality": "lil"})
    await asking.wait_for_modal()
    done = await emu.submit_modal(asking, {"confirm": "lilith the wise"})
    text = await done.wait_for_content(timeout=10)
    assert "Forgot 1 memory and 1 fact of yours with **Lilith the Wise**" in text
    assert "channel history is kept" in text and "/history clear" in text
    assert await memory_of(app).count(str(alice.id), "lilith") == 0
    assert await memory_of(app).facts(str(alice.id), "lilith") == []
    assert await memory_of(app).count(str(bob.id), "lilith") == 1

    # The channel history is still there: the next reply sees the earlier exchange.
    stats = await say(emu, alice, "history stats")
    assert "1 of your messages and 1 replies" in stats
    assert "no memories or facts with" in await say(
        emu, alice, "memory purge", {"personality": "Lilith"}
    )

    # PURGE (without a character) forgets every character's.
    await seed(app, alice, 5, "once more", venue="dm")
    asking = await emu.slash_command(emu.channel, alice, "memory purge")
    await asking.wait_for_modal()
    wrong = await emu.submit_modal(asking, {"confirm": "lilith"})
    assert "did not match" in await wrong.wait_for_content(timeout=10)
    asking = await emu.slash_command(emu.channel, alice, "memory purge")
    await asking.wait_for_modal()
    done = await emu.submit_modal(asking, {"confirm": "PURGE"})
    assert "with every character" in await done.wait_for_content(timeout=10)
    assert await memory_of(app).characters_of(str(alice.id)) == []


async def test_history_clear_keeps_memories(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    app = await start(start_bot)
    await chat(emu, alice, "my favourite colour is teal", 1)
    (stored,) = await wait_memories(app, alice, 1)
    assert "teal" in stored.text

    cleared = await say(emu, alice, "history clear")
    assert "Forgot 2 messages" in cleared
    assert "long-term memories are kept" in cleared and "/memory purge" in cleared
    assert "teal" in await say(emu, alice, "memory browse")
    undone = await say(emu, alice, "history undo")
    assert "Restored 2 messages" in undone and "/memory purge" in undone


# -- share, incognito ----------------------------------------------------------------------------


async def test_share_and_incognito_say_what_they_mean(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    app = await start(start_bot)
    memory = memory_of(app)

    shared = await say(emu, alice, "memory share", {"value": "on"})
    assert "every server" in shared and "DMs" in shared and "everywhere" in shared
    assert "/settings set memory off" in shared
    assert (await memory.prefs(str(alice.id))).share
    assert "off" in await say(emu, alice, "memory share", {"value": "off"})
    assert not (await memory.prefs(str(alice.id))).share

    hidden = await say(emu, alice, "memory incognito", {"value": "on"})
    assert "nothing new is remembered" in hidden and "still recalled" in hidden
    assert "/settings set memory off" in hidden
    assert (await memory.prefs(str(alice.id))).incognito
    exchange = Exchange(
        job_id="llm-incognito", user_id=str(alice.id), user_name="alice", personality="lilith",
        personality_name=LILITH, venue="dm", user_text="secret", reply_text="ok", at=START,
    )  # fmt: skip
    assert await memory.remember(exchange) is None
    back = await say(emu, alice, "memory incognito", {"value": "off"})
    assert "remembered again" in back
    assert await memory.remember(exchange) is not None


# -- facts ---------------------------------------------------------------------------------------


async def test_facts_view_edit_lock_delete_and_add(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    app = await start(start_bot)
    memory = memory_of(app)
    here = f"guild:{emu.guild.id}"
    await memory.put_fact(str(alice.id), "lilith", key="cat_name", text="Alice's cat is Miso",
                          venue=here)  # fmt: skip
    await memory.put_fact(str(alice.id), "lilith", key="job", text="Alice keeps a lighthouse",
                          venue="dm")  # fmt: skip
    await memory.put_fact(str(bob.id), "lilith", key="dog", text="Bob has a dog", venue=here)

    viewing = await run(emu, alice, "memory facts")
    assert viewing.original is not None
    listed = viewing.original.content
    assert "What Lilith the Wise knows about you" in listed
    assert "cat_name" in listed and "Miso" in listed and "lighthouse" in listed
    assert "Bob has a dog" not in listed and "DMs" in listed and "this server" in listed

    shown = await pick(emu, viewing.original, "cat_name", alice)
    assert "Alice's cat is Miso" in shown.content and "Unlocked" in shown.content
    locked = await click(emu, shown, "Lock", alice)
    assert "never changes or forgets it" in locked.content
    fact = next(f for f in await memory.facts(str(alice.id), "lilith") if f.key == "cat_name")
    assert fact.locked

    # Edit: a modal with the topic and the text; a new topic renames the fact, lock kept.
    edit = next(b for b in buttons(locked) if b["label"] == "Edit")
    opening = await emu.click(locked, edit["custom_id"], alice)
    modal = await opening.wait_for_modal()
    assert modal.fields["topic"]["value"] == "cat name"
    assert modal.fields["text"]["value"] == "Alice's cat is Miso"
    bad = await emu.submit_modal(opening, {"topic": "!!! ???"})
    assert "A topic needs" in await bad.wait_for_content(timeout=10)

    opening = await emu.click(locked, edit["custom_id"], alice)
    await opening.wait_for_modal()
    saved = await emu.submit_modal(opening, {"topic": "Cat's Name", "text": "Alice's cat is Mochi"})
    after = await updated(saved, locked.content)
    assert "Saved." in after.content and "Mochi" in after.content
    facts = {f.key: f for f in await memory.facts(str(alice.id), "lilith")}
    assert "cat_name" not in facts and facts["cat_s_name"].text == "Alice's cat is Mochi"
    assert facts["cat_s_name"].locked and facts["cat_s_name"].venue == here

    # Delete, then add one through the button.
    gone = await click(emu, after, "Delete", alice)
    assert "Deleted the fact **cat_s_name**" in gone.content
    add = next(b for b in buttons(gone) if b["label"] == "Add a fact")
    opening = await emu.click(gone, add["custom_id"], alice)
    await opening.wait_for_modal()
    empty = await emu.submit_modal(opening, {"topic": "pet", "text": "<@123> @everyone"})
    assert "needs a topic and some text" in await empty.wait_for_content(timeout=10)
    opening = await emu.click(gone, add["custom_id"], alice)
    await opening.wait_for_modal()
    added = await emu.submit_modal(opening, {"topic": "tea", "text": "Prefers green tea"})
    done = await updated(added, gone.content)
    assert "Saved." in done.content and "Prefers green tea" in done.content
    facts = {f.key: f for f in await memory.facts(str(alice.id), "lilith")}
    assert set(facts) == {"job", "tea"} and "pet" not in facts
    assert [f.key for f in await memory.facts(str(bob.id), "lilith")] == ["dog"]


async def test_a_character_with_a_long_slug_works_through_every_button(
    discord_emulator: DiscordEmulator, start_bot: Any, long_named: None
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    app = await start(start_bot)
    memory = memory_of(app)
    here = f"guild:{emu.guild.id}"
    seeded = [
        await seed(app, alice, n, f"bart memory {n}", venue=here, personality=LONG_SLUG, name=LONG)
        for n in range(7)
    ]
    await memory.put_fact(str(alice.id), LONG_SLUG, key="hat", text="Wears a red hat", venue=here)

    browsing = await run(emu, alice, "memory browse")  # the only character: no option needed
    assert browsing.original is not None and LONG in browsing.original.content
    assert all(len(b["custom_id"]) <= 100 for b in buttons(browsing.original))
    second = await click(emu, browsing.original, "Next ▶", alice)
    assert "page 2 of 2" in second.content
    shown = await pick(emu, second, seeded[0].id, alice)
    locked = await click(emu, shown, "Lock", alice)
    assert "Locked." in locked.content
    record = await memory.get(str(alice.id), LONG_SLUG, seeded[0].id)
    assert record is not None and record.locked

    facts = await run(emu, alice, "memory facts", {"personality": LONG})
    assert facts.original is not None
    shown = await pick(emu, facts.original, "hat", alice)
    assert "Wears a red hat" in (await click(emu, shown, "Lock", alice)).content
    assert all(f.locked for f in await memory.facts(str(alice.id), LONG_SLUG))

    asking = await emu.slash_command(emu.channel, alice, "memory purge", {"personality": LONG})
    await asking.wait_for_modal()
    done = await emu.submit_modal(asking, {"confirm": LONG.upper()})
    assert "Forgot 7 memories and 1 fact" in await done.wait_for_content(timeout=10)


async def test_with_memory_off_on_this_bot_the_commands_say_so(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app: Application = await start_bot(MEMORY_ENABLED="false")
    alice = emu.add_user("alice")
    assert emu.guild is not None
    await seed(app, alice, 1, "my cat is called Miso", venue=f"guild:{emu.guild.id}")

    shown = await say(emu, alice, "memory browse")

    assert "turned off on this bot" in shown
    assert "Miso" in shown  # what was remembered before is still the user's to see
