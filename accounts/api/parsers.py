"""The API's JSON parser: DRF's, refusing two kinds of body that parse in Python but cannot be
handled, each with a 400 instead of a crash further on.

- Nesting deeper than Python's recursion limit ([[[[...]]]]): the json module raises
  RecursionError, which DRF does not catch.
- Lone UTF-16 surrogates ("\\ud800"): valid JSON escapes but not Unicode text, so such a string
  can be neither stored nor echoed back in an error. The events endpoint (orjson) refuses them
  as malformed JSON too.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

_MAX_PATH_CHARS = 200


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        path = lone_surrogate_path(data)
        if path is not None:
            raise ParseError(
                {
                    "detail": "JSON parse error - a string is not valid Unicode.",
                    "errors": {path: ["Contains a lone UTF-16 surrogate (such as \\ud800)."]},
                }
            )
        return data


def lone_surrogate_path(data: object) -> str | None:
    """Where the first string (key or value) holding a lone surrogate is, such as
    'items[3].name'; None when there is none. Iterative: the data may be nested ~1,000 deep."""
    stack: list[tuple[object, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                return path[:_MAX_PATH_CHARS] or "non_field_errors"
        elif isinstance(value, dict):
            if not all(_is_unicode(key) for key in value):  # the key itself cannot be shown
                return path[:_MAX_PATH_CHARS] or "non_field_errors"
            # Pushed in reverse so that strings are checked in document order.
            stack.extend((value[k], f"{path}.{k}" if path else k) for k in reversed(value))
        elif isinstance(value, list):
            stack.extend((value[i], f"{path}[{i}]") for i in reversed(range(len(value))))
    return None


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
