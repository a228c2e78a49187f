"""The prompt engine: templates, versions, reviews, selection and Handlebars rendering."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loop.store.base import RedisStore


def install(store: RedisStore) -> None:
    """Attach ``store.prompts`` (seeding of the defaults happens on first use)."""
    from loop.prompts.service import PromptService

    store.prompts = PromptService(store)  # type: ignore[attr-defined]
