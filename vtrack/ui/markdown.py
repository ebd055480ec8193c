"""Markdown of run descriptions, notes and ``.md`` artifacts, rendered safely.

Promises (the text is untrusted: anyone who logs a run writes it):

- CommonMark plus tables and strikethrough, by ``markdown-it-py`` with raw HTML
  **off**: ``<script>``, ``<img onerror=…>`` and every other tag in the source are shown
  as text, never passed through. The renderer writes only the tags of Markdown itself.
- Links and images keep only safe targets: ``http``, ``https`` and ``mailto`` links,
  relative and ``#`` links; images only relative or ``data:image/{png,jpeg,gif,webp}``
  (the pages' ``img-src 'self' data:`` policy would block the rest anyway). Anything
  else (``javascript:``, ``vbscript:``, ``data:text/html``, ``file:``…) stays text.
- Links get ``rel="nofollow noopener noreferrer"``.
- The output is a :class:`markupsafe.Markup`, so a template shows it as is; the pages
  still run under ``script-src 'self'``, so even a renderer bug could not run inline code.

markdown-it-py is imported when the first text is rendered.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_SAFE_LINK = re.compile(r"(https?:|mailto:|#|/|\./|\.\./|[^:/?#]*([/?#]|$))", re.I)
_SAFE_IMAGE = re.compile(r"(data:image/(png|jpeg|gif|webp)[;,]|/|\./|\.\./|[^:/?#]*([/?#]|$))",
                         re.I)  # fmt: skip
#: Characters rendered at most (longer text is cut, and says so).
MAX_CHARS = 200_000


def safe_url(url: str, *, image: bool = False) -> bool:
    """True when ``url`` may be a link target (or, with ``image``, an image source)."""
    url = url.strip()
    # control characters and whitespace inside the scheme are how filters are dodged
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    return bool((_SAFE_IMAGE if image else _SAFE_LINK).match(url))


@functools.lru_cache(maxsize=1)
def _renderer() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = lambda url: safe_url(url, image=True) or safe_url(url)  # type: ignore[method-assign]
    renderer: Any = md.renderer

    def link_open(_self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        token.attrSet("rel", "nofollow noopener noreferrer")
        return str(renderer.renderToken(tokens, idx, options, env))

    default_image = renderer.rules.get("image")

    def image(_self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        if not safe_url(str(token.attrGet("src") or ""), image=True):
            from markupsafe import escape

            return str(escape(token.content))
        return str(default_image(tokens, idx, options, env)) if default_image else ""

    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return md


def render(text: str | None) -> Any:
    """``text`` as safe HTML (a ``Markup``); empty for None."""
    from markupsafe import Markup

    if not text:
        return Markup("")
    cut = len(text) > MAX_CHARS
    html = _renderer().render(text[:MAX_CHARS])
    if cut:
        html += f'<p class="muted">(the first {MAX_CHARS:,} characters are shown)</p>'
    return Markup(html)  # noqa: S704 - markdown-it with html off: only its own tags
