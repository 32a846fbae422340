"""on_commit callbacks run after a commit and never after a rollback."""

import pytest

from app.models.core import Organization
from app.transactions import atomic, on_commit


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
