"""Property tests for httpy.core.routing.

1. ``match`` never raises, whatever the method and path, and returns one of the four
   result types.
2. Round trip: fill a random template with random values, percent-encode them, and
   ``match`` gives the same values back.
3. Differential: a naive reference (one regex per route, routes tried in precedence
   order) agrees with the trie on random route tables and paths.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from httpy.core.routing import (
    AutoOptions,
    Match,
    MethodNotAllowed,
    NotFound,
    RouteDefinitionError,
    Router,
)

RESULT_TYPES = (Match, NotFound, MethodNotAllowed, AutoOptions)
METHODS = ["GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE"]

# Text without surrogates, which cannot be UTF-8 encoded and so cannot be percent-encoded.
encodable_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]))

# --------------------------------------------------------------------- 1. never raises


def _fixed_router() -> Router[str]:
    r: Router[str] = Router()
    r.add("/", ["GET"], "root")
    r.add("/users", ["GET", "POST"], "users")
    r.add("/users/", ["GET"], "users-slash")
    r.add("/users/{id:int}", ["GET", "PUT"], "user-int")
    r.add("/users/{name}", ["GET"], "user-str")
    r.add("/users/{name}/posts/{post:int}", ["GET"], "post")
    r.add("/files/{rest:path}", ["GET", "OPTIONS"], "files")
    r.add("/café/{x:str}", ["HEAD"], "cafe")
    r.add("/a/{x}/c", ["DELETE"], "a-x-c")
    r.add("/a/b/d", ["GET"], "a-b-d")
    r.add("/{rest:path}", ["PATCH"], "catch-all")
    return r


FIXED = _fixed_router()

url_like = st.text(alphabet="/%0123456789abcdefABCDEF{}:.é\x00 ?#")
any_path = st.one_of(
    st.text(),
    st.text().map(lambda s: "/" + s),
    url_like,
    url_like.map(lambda s: "/" + s),
    st.binary().map(lambda b: b.decode("latin-1")),
    st.binary().map(lambda b: "/" + b.decode("utf-8", "surrogateescape")),
)
any_method = st.one_of(st.sampled_from([*METHODS, "get", "head", "options"]), st.text())


@given(method=any_method, path=any_path)
def test_match_never_raises(method: str, path: str) -> None:
    result = FIXED.match(method, path)
    assert isinstance(result, RESULT_TYPES)
    if isinstance(result, Match):
        assert result.endpoint == result.route.endpoint
        assert method.upper() in result.route.methods or (
            method.upper() == "HEAD" and "GET" in result.route.methods
        )
    elif isinstance(result, MethodNotAllowed | AutoOptions):
        assert "OPTIONS" in result.allowed
        assert result.allow_header() == ", ".join(sorted(result.allowed))


@given(methods=st.lists(st.sampled_from(METHODS), min_size=1), path=any_path, method=any_method)
def test_match_never_raises_on_a_catch_all(methods: list[str], path: str, method: str) -> None:
    r: Router[int] = Router()
    r.add("/{rest:path}", methods, 0)
    assert isinstance(r.match(method, path), RESULT_TYPES)


# --------------------------------------------------------------------- 2. round trip

static_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="/{}"), max_size=8
)
param_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(min_value=0, max_value=10**40),
    "str": encodable_text.filter(bool),
    "path": encodable_text,
}


@st.composite
def filled_template(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """A template, a concrete percent-encoded path for it, and the expected params."""
    kinds = draw(st.lists(st.sampled_from(["static", "int", "str"]), max_size=6))
    if draw(st.booleans()):
        kinds.append("path")
    template: list[str] = []
    concrete: list[str] = []
    expected: dict[str, Any] = {}
    for index, kind in enumerate(kinds):
        if kind == "static":
            text = draw(static_text)
            template.append(text)
            concrete.append(quote(text, safe=""))
            continue
        name = f"{draw(param_name)}_{index}"  # the suffix keeps names unique
        value = draw(VALUES[kind])
        template.append(f"{{{name}:{kind}}}")
        # A {path} value may keep its slashes raw or have them encoded: both decode alike.
        safe = draw(st.sampled_from(["", "/"])) if kind == "path" else ""
        concrete.append(quote(str(value), safe=safe))
        expected[name] = value
    return "/" + "/".join(template), "/" + "/".join(concrete), expected


@given(case=filled_template())
def test_round_trip(case: tuple[str, str, dict[str, Any]]) -> None:
    template, path, expected = case
    r: Router[str] = Router()
    route = r.add(template, ["GET"], "endpoint")
    result = r.match("GET", path)
    assert result == Match(route, "endpoint", expected)
    assert isinstance(result, Match)
    assert {k: type(v) for k, v in result.params.items()} == {
        k: type(v) for k, v in expected.items()
    }
    assert r.match("HEAD", path) == result


# --------------------------------------------------------------------- 3. differential

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(\w+))?\}")
_RANK = {"static": 0, "int": 1, "str": 2, "path": 3}
_PATTERN = {"int": "([0-9]+)", "str": "([^/]+)", "path": "(.*)"}


def _canonical(segment: str) -> str:
    # quote() with nothing safe is injective and never emits "/", so joining canonical
    # segments with "/" lets one regex see segment boundaries that %2F cannot fake.
    # surrogatepass: raw request text may carry lone surrogates that unquote passes through.
    return quote(segment, safe="", errors="surrogatepass")


class ReferenceRoute:
    """One route as the naive matcher sees it: a regex over the canonical path."""

    def __init__(self, template: str, methods: frozenset[str], endpoint: int) -> None:
        self.methods = methods
        self.endpoint = endpoint
        self.kinds: list[str] = []
        self.names: list[str] = []
        parts = []
        for segment in template[1:].split("/"):
            param = _PARAM.fullmatch(segment)
            if param is None:
                self.kinds.append("static")
                parts.append(re.escape(_canonical(segment)))
            else:
                kind = param.group(2) or "str"
                self.kinds.append(kind)
                self.names.append(param.group(1))
                parts.append(_PATTERN[kind])
        self.regex = re.compile("/" + "/".join(parts))
        self.rank = tuple(_RANK[kind] for kind in self.kinds)
        # Same shape and converters, names aside.
        self.shape = tuple(
            (kind, segment if kind == "static" else "")
            for kind, segment in zip(self.kinds, template[1:].split("/"), strict=True)
        )

    def params(self, canonical_path: str) -> dict[str, Any] | None:
        found = self.regex.fullmatch(canonical_path)
        if found is None:
            return None
        params: dict[str, Any] = {}
        converters = [kind for kind in self.kinds if kind != "static"]
        for name, kind, raw in zip(self.names, converters, found.groups(), strict=True):
            if kind == "int":
                try:
                    params[name] = int(raw)
                except ValueError:  # beyond the int-from-str digit limit
                    return None
            else:
                params[name] = unquote(raw, errors="surrogatepass")
        return params


class Reference:
    """The slow, obvious router: every route, in precedence order, one regex each."""

    def __init__(self) -> None:
        self.routes: list[ReferenceRoute] = []

    def clashes(self, route: ReferenceRoute) -> bool:
        return any(r.shape == route.shape and r.methods & route.methods for r in self.routes)

    def match(self, method: str, path: str) -> tuple[Any, ...]:
        path = path or "/"
        if not path.startswith("/"):
            return ("404",)
        try:
            segments = [unquote(s, errors="strict") for s in path[1:].split("/")]
        except UnicodeDecodeError:
            return ("404",)
        canonical = "/" + "/".join(_canonical(s) for s in segments)
        method = method.upper()

        # Matching routes grouped into templates (by shape), templates in precedence order.
        templates: dict[tuple[Any, ...], list[tuple[ReferenceRoute, dict[str, Any]]]] = {}
        for route in sorted(self.routes, key=lambda r: r.rank):
            params = route.params(canonical)
            if params is not None:
                templates.setdefault(route.shape, []).append((route, params))
        allowed: set[str] = set()
        for group in templates.values():
            by_method = {m: (route, params) for route, params in group for m in route.methods}
            # A template without an explicit HEAD serves HEAD with its GET route.
            wanted = "GET" if method == "HEAD" and "HEAD" not in by_method else method
            if wanted in by_method:
                route, params = by_method[wanted]
                return ("match", route.endpoint, params)
            allowed |= set(by_method)
            if "GET" in by_method:
                allowed.add("HEAD")
        if not templates:
            return ("404",)
        allowed.add("OPTIONS")
        return ("options" if method == "OPTIONS" else "405", frozenset(allowed))


def outcome(result: Match[int] | NotFound | MethodNotAllowed | AutoOptions) -> tuple[Any, ...]:
    if isinstance(result, Match):
        assert result.endpoint == result.route.endpoint
        return ("match", result.endpoint, result.params)
    if isinstance(result, NotFound):
        return ("404",)
    if isinstance(result, AutoOptions):
        return ("options", result.allowed)
    return ("405", result.allowed)


# Small alphabets, so that templates overlap and paths actually hit them.
_STATIC = ["a", "b", "1", "", "é"]
_REQUEST_SEGMENTS = [
    "a", "b", "c", "1", "01", "", "%61", "%31", "%2F", "a%2Fb", "%C3%A9", "é", "%FF", "x%",
]  # fmt: skip


@st.composite
def template(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(_STATIC),
                st.sampled_from(["{p}", "{p:str}", "{p:int}"]),
            ),
            max_size=4,
        )
    )
    if draw(st.booleans()):
        parts.append("{p:path}")
    # Parameter names must be unique within a template; vary them across templates.
    suffix = draw(st.sampled_from(["", "x"]))
    numbered = [part.replace("{p", f"{{p{i}{suffix}") for i, part in enumerate(parts)]
    return "/" + "/".join(numbered)


route_table = st.lists(
    st.tuples(template(), st.sets(st.sampled_from(METHODS), min_size=1, max_size=3)),
    max_size=10,
)
request_path = st.one_of(
    st.lists(st.sampled_from(_REQUEST_SEGMENTS), max_size=6).map(lambda s: "/" + "/".join(s)),
    any_path,
)
request_method = st.one_of(st.sampled_from([*METHODS, "PATCH", "get"]), any_method)


@given(
    table=route_table,
    requests=st.lists(st.tuples(request_method, request_path), min_size=1, max_size=10),
)
def test_matches_reference(
    table: list[tuple[str, set[str]]], requests: list[tuple[str, str]]
) -> None:
    router: Router[int] = Router()
    reference = Reference()
    for endpoint, (path, methods) in enumerate(table):
        ref_route = ReferenceRoute(path, frozenset(methods), endpoint)
        if reference.clashes(ref_route):
            with pytest.raises(RouteDefinitionError):
                router.add(path, methods, endpoint)
            continue
        router.add(path, methods, endpoint)
        reference.routes.append(ref_route)
    assert [route.endpoint for route in router.routes] == [r.endpoint for r in reference.routes]
    for method, path in requests:
        assert outcome(router.match(method, path)) == reference.match(method, path), (
            method,
            path,
        )
