"""HTML from Jinja2 templates: the status page, the calibration report, the closed-loop report.

One environment over the templates packaged in `leadsync/templates/`, with
autoescaping on for every template (a lead's or a config's text is always shown,
never run) and strict undefined names (a typo in a template fails its test rather
than rendering an empty cell). Stylesheets are plain `.css` files next to the
templates: a page embeds one whole, and the server's Content-Security-Policy
allows it by its hash (`style_hash`), so no other inline style could apply.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

_ENV = Environment(
    loader=PackageLoader("leadsync", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context: Any) -> str:
    """The named template rendered with `context`; every value is escaped unless Markup."""
    return _ENV.get_template(template).render(**context)


def stylesheet(name: str) -> Markup:
    """A packaged stylesheet's text, to embed whole in a `<style>` element."""
    source, _, _ = _ENV.loader.get_source(_ENV, name)  # type: ignore[union-attr]
    # CSS holds quotes and ">" that escaping would break; it is ours, not user text.
    return Markup(source)  # noqa: S704


def style_hash(css: str) -> str:
    """The CSP source (`sha256-...`) that lets a browser apply exactly this stylesheet."""
    return "sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()


def relative(when: datetime, now: datetime) -> str:
    """How long ago `when` was, in the largest whole unit ("just now", "5 min ago", "in 3 h")."""
    seconds = (now - when).total_seconds()
    span = abs(seconds)
    if span < 5:
        return "just now"
    unit, size = next(
        ((u, s) for u, s in (("d", 86400), ("h", 3600), ("min", 60)) if span >= s), ("s", 1)
    )
    amount = f"{int(span // size)} {unit}"
    return f"{amount} ago" if seconds > 0 else f"in {amount}"


# A figure with nothing behind it (a rate of no leads) reads as a dash, in every report.
MISSING = "—"


def percent(value: float | None) -> str:
    """A rate as "25%", or "—" when there is none."""
    return MISSING if value is None else f"{value:.0%}"


def times(value: float | None) -> str:
    """A ratio (a lift) as "1.50×", or "—" when there is none."""
    return MISSING if value is None else f"{value:.2f}×"


_ENV.filters.update(ago=relative, pct=percent, times=times)
