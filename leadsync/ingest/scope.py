"""Which pages and forms are ours: `[[facebook.pages]]` and each page's `forms`.

One Meta app often serves the pages of several clients, and its webhooks arrive for
all of them. A lead is taken only when its page is configured and its form is not
excluded by that page's `forms`; the webhook route drops notifications of other
pages early, and the fetcher decides for good on the page and form Graph gives.
"""

from __future__ import annotations

from collections.abc import Iterable

from leadsync.config import PageSettings


class PageScope:
    """The configured pages, each with the forms it takes (None: every form)."""

    def __init__(self, forms_by_page: dict[str, frozenset[str] | None]):
        self._forms = forms_by_page

    @classmethod
    def of(cls, pages: Iterable[PageSettings]) -> PageScope:
        return cls({p.id: None if p.forms is None else frozenset(p.forms) for p in pages})

    def takes(self, page_id: str, form_id: str) -> bool:
        """True when leads of `form_id` on `page_id` are ours; "" (form not known yet) asks
        only about the page."""
        if page_id not in self._forms:
            return False
        forms = self._forms[page_id]
        return forms is None or not form_id or form_id in forms

    def why_not(self, page_id: str, form_id: str) -> str:
        """Why a lead of this page and form is not taken, for logs and the notification."""
        if page_id not in self._forms:
            return f"page {page_id or '(unknown)'} is not in [[facebook.pages]]"
        return f"form {form_id} is not in the forms of page {page_id}"
