"""A pure HTTP router: templates in, endpoints out.

Templates are ``/``-separated segments.  A segment is either static text or one whole
parameter: ``{name}`` (same as ``{name:str}``, one non-empty segment), ``{name:int}`` (one
segment of ASCII digits, converted with :func:`int`) or ``{name:path}`` (the rest of the
path, may contain ``/``, may be empty; only as the last segment).  Trailing slashes are
significant, and ``/`` is a route like any other.

:meth:`Router.match` takes the raw, percent-encoded request path (no query string).  It
splits on ``/`` *before* percent-decoding each segment, so ``%2F`` never splits a segment.
Static template text is compared with the decoded segment, so write ``/café``, not
``/caf%C3%A9``.  A path that is not valid UTF-8 once decoded matches nothing.

Precedence, at every segment: static text, then ``int``, then ``str``, then ``path``.
The walk backtracks, so a route that fails deeper down gives way to the next candidate.
Templates with the same shape and converters (parameter names aside) share one trie leaf,
and together they are one "template" for the method rules below:

* the first matching template that has the method wins; a template without an explicit
  HEAD serves HEAD with its GET route;
* otherwise, if some template matches, OPTIONS gets :class:`AutoOptions` and any other
  method gets :class:`MethodNotAllowed`, both listing the methods of *all* matching
  templates (plus HEAD for GET, and OPTIONS);
* otherwise :class:`NotFound`.

Everything here is plain data and stdlib: no I/O, no clock, no global state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

# RFC 9110 token: what a method name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONVERTERS = frozenset({"str", "int", "path"})


class RouteDefinitionError(ValueError):
    """:meth:`Router.add` was given a template or method set it cannot register."""


@dataclass(frozen=True, slots=True)
class Route(Generic[T]):
    """One registration: a template, the upper-case methods it serves, and its endpoint."""

    path: str
    methods: frozenset[str]
    endpoint: T


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """The request is served by ``route``; ``params`` holds the converted parameters."""

    route: Route[T]
    endpoint: T
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NotFound:
    """No template matches the path (a 404)."""


def _allow_header(allowed: frozenset[str]) -> str:
    return ", ".join(sorted(allowed))


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    """The path exists but not for this method (a 405); ``allowed`` is for ``Allow``."""

    allowed: frozenset[str]

    def allow_header(self) -> str:
        """The ``Allow`` header value: sorted methods joined by ``", "``."""
        return _allow_header(self.allowed)


@dataclass(frozen=True, slots=True)
class AutoOptions:
    """OPTIONS on a path that exists but has no explicit OPTIONS route."""

    allowed: frozenset[str]

    def allow_header(self) -> str:
        """The ``Allow`` header value: sorted methods joined by ``", "``."""
        return _allow_header(self.allowed)


class _Target(NamedTuple, Generic[T]):
    """A route at a trie leaf, with its parameter names in segment order."""

    route: Route[T]
    names: tuple[str, ...]


@dataclass(slots=True, eq=False)
class _Node(Generic[T]):
    """A trie node.  ``targets`` is non-empty exactly when some template ends here."""

    static: dict[str, _Node[T]] = field(default_factory=dict)
    params: dict[str, _Node[T]] = field(default_factory=dict)  # keyed by converter
    targets: dict[str, _Target[T]] = field(default_factory=dict)

    def child(self, kind: str, text: str) -> _Node[T]:
        """The child for one parsed template segment, created on first use."""
        children = self.static if kind == "static" else self.params
        return children.setdefault(text if kind == "static" else kind, _Node())

    def lookup(self, method: str) -> _Target[T] | None:
        """The route serving ``method`` here; HEAD falls back to GET."""
        target = self.targets.get(method)
        if target is None and method == "HEAD":
            target = self.targets.get("GET")
        return target

    def allowed(self) -> set[str]:
        """The methods this leaf serves, HEAD included when GET is."""
        methods = set(self.targets)
        if "GET" in methods:
            methods.add("HEAD")
        return methods


def _parse_template(path: str) -> list[tuple[str, str]]:
    """Split a template into ``(kind, text)`` pairs: ``("static", text)`` or
    ``(converter, param_name)``.  Raises :class:`RouteDefinitionError` if it is invalid."""
    if not path.startswith("/"):
        raise RouteDefinitionError(f"route path must start with '/': {path!r}")
    parsed: list[tuple[str, str]] = []
    names: set[str] = set()
    segments = path[1:].split("/")
    for index, segment in enumerate(segments):
        if "{" not in segment and "}" not in segment:
            parsed.append(("static", segment))
            continue
        inner = segment[1:-1]
        if (
            len(segment) < 2
            or segment[0] != "{"
            or segment[-1] != "}"
            or "{" in inner
            or "}" in inner
        ):
            raise RouteDefinitionError(
                f"malformed segment {segment!r} in {path!r}: a parameter must be a whole "
                "segment, '{name}' or '{name:converter}'"
            )
        name, colon, converter = inner.partition(":")
        if not colon:
            converter = "str"
        if not name.isidentifier():
            raise RouteDefinitionError(f"bad parameter name {name!r} in {path!r}")
        if converter not in _CONVERTERS:
            raise RouteDefinitionError(f"unknown converter {converter!r} in {path!r}")
        if name in names:
            raise RouteDefinitionError(f"duplicate parameter {name!r} in {path!r}")
        if converter == "path" and index != len(segments) - 1:
            raise RouteDefinitionError(f"{{{name}:path}} must be the last segment in {path!r}")
        names.add(name)
        parsed.append((converter, name))
    return parsed


def _normalize_methods(methods: Iterable[str]) -> frozenset[str]:
    # A bare string is iterable too, and "GET" would quietly register G, E and T.
    if isinstance(methods, str):
        raise TypeError("methods must be an iterable of method names, not a str")
    normalized = frozenset(m.upper() for m in methods)
    if not normalized:
        raise RouteDefinitionError("a route needs at least one method")
    for method in normalized:
        if not _TOKEN.fullmatch(method):
            raise RouteDefinitionError(f"invalid method name {method!r}")
    return normalized


def _to_int(segment: str) -> int | None:
    """``int(segment)`` for a segment of ASCII digits, else None."""
    # isdigit() alone accepts non-ASCII digits such as "²" or "٣".
    if not (segment.isascii() and segment.isdigit()):
        return None
    try:
        return int(segment)
    except ValueError:
        # Longer than sys.get_int_max_str_digits(): treat as "not an int" rather than fail.
        return None


class Router(Generic[T]):
    """Maps (method, path) to endpoints of type ``T``.

    Templates compile into a segment trie when added, so :meth:`match` walks segments
    instead of scanning every route.  A router is not safe to mutate while another thread
    matches on it; build it first, then match.
    """

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        # Fully static templates, keyed by their segments (a tuple, not the joined string,
        # because a decoded request segment may itself contain "/").
        self._static: dict[tuple[str, ...], _Node[T]] = {}
        # The same leaves by their request path as it arrives (no percent sign to
        # decode): one dict lookup, no splitting, for the common request.
        self._static_paths: dict[str, _Node[T]] = {}
        self._routes: list[Route[T]] = []

    @property
    def routes(self) -> Sequence[Route[T]]:
        """Every route added, in registration order."""
        return tuple(self._routes)

    def add(self, path: str, methods: Iterable[str], endpoint: T) -> Route[T]:
        """Register ``endpoint`` for ``methods`` (case-insensitive) on template ``path``.

        Raises :class:`RouteDefinitionError` for an invalid template or method, or when one
        of the methods is already registered on an equivalent template (same segments and
        converters, whatever the parameter names).  Nothing is registered on error.
        """
        parsed = _parse_template(path)
        method_set = _normalize_methods(methods)
        node = self._root
        for kind, text in parsed:
            node = node.child(kind, text)
        clash = sorted(method_set & node.targets.keys())
        if clash:
            existing = node.targets[clash[0]].route.path
            raise RouteDefinitionError(
                f"{', '.join(clash)} {path!r} already registered by template {existing!r}"
            )
        route = Route(path, method_set, endpoint)
        target = _Target(route, tuple(text for kind, text in parsed if kind != "static"))
        for method in method_set:
            node.targets[method] = target
        if all(kind == "static" for kind, _ in parsed):
            texts = tuple(text for _, text in parsed)
            self._static[texts] = node
            self._static_paths["/" + "/".join(texts)] = node
        self._routes.append(route)
        return route

    def match(self, method: str, path: str) -> Match[T] | NotFound | MethodNotAllowed | AutoOptions:
        """Resolve a request.  Never raises, whatever the method and path strings hold.

        ``path`` is the raw request path, percent-encoded, without the query string; ``""``
        means ``"/"``.  A path that does not start with ``/`` (such as ``*``) is NotFound.
        """
        if path == "":
            path = "/"
        if "%" not in path:
            leaf = self._static_paths.get(path)
            if leaf is not None:
                found = leaf.lookup(method.upper())
                if found is not None:
                    return Match(found.route, found.route.endpoint, {})
        if not path.startswith("/"):
            return NotFound()
        raw = path[1:].split("/")
        try:
            segments = [unquote(segment, errors="strict") for segment in raw]
        except UnicodeDecodeError:
            return NotFound()
        method = method.upper()

        # Fast path: a fully static template always comes first in precedence, so if it
        # serves the method nothing else needs looking at.
        node = self._static.get(tuple(segments))
        if node is not None:
            target = node.lookup(method)
            if target is not None:
                return Match(target.route, target.route.endpoint, {})

        allowed: set[str] = set()
        for node, values in self._walk(self._root, raw, segments, 0, ()):
            target = node.lookup(method)
            if target is not None:
                params = dict(zip(target.names, values, strict=True))
                return Match(target.route, target.route.endpoint, params)
            allowed |= node.allowed()
        # Every leaf serves at least one method, so an empty set means no template matched.
        if not allowed:
            return NotFound()
        allowed.add("OPTIONS")
        if method == "OPTIONS":
            return AutoOptions(frozenset(allowed))
        return MethodNotAllowed(frozenset(allowed))

    def _walk(
        self,
        node: _Node[T],
        raw: list[str],
        segments: list[str],
        index: int,
        values: tuple[Any, ...],
    ) -> Iterator[tuple[_Node[T], tuple[Any, ...]]]:
        """Yield every leaf matching ``segments[index:]`` below ``node``, in precedence
        order, with the converted parameter values collected on the way."""
        if index == len(segments):
            if node.targets:
                yield node, values
            return
        segment = segments[index]
        child = node.static.get(segment)
        if child is not None:
            yield from self._walk(child, raw, segments, index + 1, values)
        child = node.params.get("int")
        if child is not None and (number := _to_int(segment)) is not None:
            yield from self._walk(child, raw, segments, index + 1, (*values, number))
        child = node.params.get("str")
        if child is not None and segment:
            yield from self._walk(child, raw, segments, index + 1, (*values, segment))
        child = node.params.get("path")
        if child is not None:
            # Decoding the raw remainder as a whole cannot fail: each of its segments
            # already decoded, and "/" is plain ASCII.
            rest = unquote("/".join(raw[index:]), errors="strict")
            yield from self._walk(child, raw, segments, len(segments), (*values, rest))
