"""on_commit callbacks run after a commit and never after a rollback."""

import pytest

from app.models.core import Organization
from app.kernel.transactions import atomic, on_commit


async def test_callbacks_run_after_commit_only(app) -> None:
    seen: list[str] = []

    async def note(tag: str) -> None:
        # The row is visible by the time the callback runs: it ran after the commit.
        seen.append(f"{tag}:{await Organization.filter(id=tag).exists()}")

    async with atomic():
        await Organization.create(id="org_committed", name="c")
        async with atomic():  # nested blocks join the outer transaction
            await on_commit(lambda: note("org_committed"))
        assert seen == []

    with pytest.raises(RuntimeError):
        async with atomic():
            await Organization.create(id="org_rolledback", name="r")
            await on_commit(lambda: note("org_rolledback"))
            raise RuntimeError("boom")

    assert seen == ["org_committed:True"]
    assert not await Organization.filter(id="org_rolledback").exists()


async def test_cancelling_a_transaction_while_it_begins_does_not_wedge_the_database(app) -> None:
    """A task cancelled at any point of opening a transaction (a client hanging up, shutdown
    cancelling a worker) must not leave the connection's transaction lock held."""
    import asyncio

    async def write(tag: str) -> None:
        async with atomic():
            await Organization.create(id=tag, name=tag)

    for steps in range(12):  # cancel after 0, 1, 2 ... loop turns: lands in each await of entry
        task = asyncio.create_task(write(f"org_cancelled_{steps}"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.wait_for(write(f"org_after_{steps}"), timeout=5)
        assert await Organization.filter(id=f"org_after_{steps}").exists()


async def test_a_failed_on_commit_callback_is_logged_not_raised_outside_a_transaction(caplog) -> None:
    """Outside atomic() the caller's write is already committed: a failing notification must
    not turn it into an error (as inside, where callbacks run after the commit)."""
    ran: list[str] = []

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("socket server down")

    async def fine() -> None:
        ran.append("fine")

    await on_commit(broken)
    await on_commit(fine)
    assert ran == ["broken", "fine"]
    assert "on_commit callback failed" in caplog.text
