"""Case-insensitive header collections for the framework, over the core's raw pairs.

:class:`Headers` is the read-only view a request exposes (``request.headers.get(...)``):
a ``Mapping[str, str]`` whose lookups ignore case and which keeps repeated fields.
:class:`MutableHeaders` is what a response carries.  Names are stored lower-cased;
values are decoded as latin-1, as RFC 9110 5.5 allows for field values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar, overload

from .events import Headers as RawHeaders

_T = TypeVar("_T")
HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | None

# Characters that would split a header and let a value inject another one.
_FORBIDDEN_IN_VALUE = ("\r", "\n", "\x00")
# RFC 9110 5.1: a field name is a token.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive, multi-valued headers.  ``get`` returns the first."""

    __slots__ = ("_index", "_raw")

    def __init__(self, headers: HeaderInput = None, *, raw: RawHeaders | None = None) -> None:
        if raw is not None:
            self._raw: RawHeaders = raw
        else:
            self._raw = tuple(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in _pairs(headers)
            )
        self._index: dict[str, str] | None = None

    @property
    def raw(self) -> RawHeaders:
        """The pairs as received: lower-case name bytes, value bytes."""
        return self._raw

    def _lookup(self) -> dict[str, str]:
        # Built on first use: many requests never look at most of their headers.
        if self._index is None:
            index: dict[str, str] = {}
            for name, value in self._raw:
                index.setdefault(name.decode("latin-1"), value.decode("latin-1"))
            self._index = index
        return self._index

    def __getitem__(self, name: str) -> str:
        return self._lookup()[name.lower()]

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T: ...

    def get(self, name: str, default: object = None, /) -> object:
        return self._lookup().get(name.lower(), default)

    def getlist(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        key = name.lower().encode("latin-1")
        return [value.decode("latin-1") for n, value in self._raw if n == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup())

    def __len__(self) -> int:
        return len(self._lookup())

    def multi_items(self) -> list[tuple[str, str]]:
        """All pairs, repeated names included."""
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw]

    def __repr__(self) -> str:
        return f"Headers({self.multi_items()!r})"


class MutableHeaders:
    """Response headers: case-insensitive set/get/delete, repeated names via ``append``.

    Values containing CR, LF or NUL are refused with :class:`ValueError`, so application
    code can never inject a header or split a response; surrounding spaces and tabs are
    dropped (RFC 9110 5.5).
    """

    __slots__ = ("_items",)

    def __init__(self, headers: HeaderInput = None) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in _pairs(headers):
            self.append(name, value)

    @classmethod
    def from_checked(cls, items: list[tuple[str, str]]) -> MutableHeaders:
        """Headers made of ``items`` as they are, which the caller has already checked:
        lower-case token names, values as :meth:`append` would store them.  For fields
        built once and reused (a response's ``content-type`` for a known media type)."""
        headers = cls.__new__(cls)
        headers._items = items
        return headers

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower()
        for n, v in self._items:
            if n == key:
                return v
        return default

    def getlist(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self._items if n == key]

    def __setitem__(self, name: str, value: str) -> None:
        """Replace every field called ``name`` with one."""
        key = name.lower()
        value = _field_value(key, value)
        self._items = [(n, v) for n, v in self._items if n != key]
        self._items.append((key, value))

    def setdefault(self, name: str, value: str) -> str:
        current = self.get(name)
        if current is None:
            self[name] = value
            return value
        return current

    def append(self, name: str, value: str) -> None:
        """Add a field, keeping existing ones of the same name (``Set-Cookie``)."""
        key = name.lower()
        self._items.append((key, _field_value(key, value)))

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        self._items = [(n, v) for n, v in self._items if n != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n == name.lower() for n, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(n for n, _ in self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def raw(self) -> RawHeaders:
        return tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in self._items)

    def __repr__(self) -> str:
        return f"MutableHeaders({self._items!r})"


def _pairs(headers: HeaderInput) -> Iterable[tuple[str, str]]:
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def _field_value(name: str, value: str) -> str:
    """``value`` checked for field ``name``, without surrounding spaces and tabs: they
    are not part of a field value (RFC 9110 5.5), and the wire writers refuse them."""
    value = value.strip(" \t")
    _check(name, value)
    return value


def _check(name: str, value: str) -> None:
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid header name {name!r} (a field name is an RFC 9110 token)")
    if any(c in value for c in _FORBIDDEN_IN_VALUE):
        raise ValueError(f"header {name!r} has a CR, LF or NUL in its value")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name!r} has a value that is not latin-1") from None
