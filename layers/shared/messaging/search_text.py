"""The searchable text of a message body: what full-text search indexes.

Email bodies may be HTML. Search must find the words a reader sees, never tag names, attribute values or
the contents of scripts and style sheets, so HTML is reduced to its text here, at write time, with the
standard library's tokenizer: nothing is rendered, fetched or executed. SMS/MMS bodies are plain text.
"""

from __future__ import annotations

from html.parser import HTMLParser

# Elements whose content is not text a reader sees.
_HIDDEN_ELEMENTS = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Elements that separate words even when the markup has no whitespace around them (`<p>a</p><p>b</p>`).
_BLOCK_ELEMENTS = frozenset(
    {"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "ul", "ol"}
)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_ELEMENTS:
            self._hidden_depth += 1
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_ELEMENTS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_ELEMENTS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The text of an HTML document or fragment; plain text comes back unchanged but for character references."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def searchable_text(message_type: str, body: str) -> str:
    """What the full-text index holds for a body: the text of an email's HTML, an SMS/MMS body as it is."""
    return html_to_text(body) if message_type == "email" else body
