"""Tests for httpy.core.routing: templates, converters, decoding, precedence, methods."""

from __future__ import annotations

import re

import pytest

from httpy.core.routing import (
    AutoOptions,
    Match,
    MethodNotAllowed,
    NotFound,
    Route,
    RouteDefinitionError,
    Router,
)


def router(*routes: tuple[str, list[str], str]) -> Router[str]:
    r: Router[str] = Router()
    for path, methods, endpoint in routes:
        r.add(path, methods, endpoint)
    return r


def matched(result: object) -> Match[str]:
    assert isinstance(result, Match), result
    return result


# ------------------------------------------------------------------ registration and results


def test_add_returns_route_with_upper_case_methods() -> None:
    r: Router[str] = Router()
    route = r.add("/users/{id:int}", ["get", "Post", "GET"], "users")
    assert route == Route("/users/{id:int}", frozenset({"GET", "POST"}), "users")
    assert r.routes == (route,)


def test_routes_in_registration_order_and_not_a_live_view() -> None:
    r = router(("/b", ["GET"], "b"), ("/a", ["GET"], "a"), ("/b", ["POST"], "b2"))
    routes = r.routes
    assert [(x.path, x.endpoint) for x in routes] == [("/b", "b"), ("/a", "a"), ("/b", "b2")]
    r.add("/c", ["GET"], "c")
    assert len(routes) == 3
    assert len(r.routes) == 4


def test_match_carries_route_endpoint_and_params() -> None:
    r: Router[str] = Router()
    route = r.add("/users/{id:int}/posts/{slug}", ["GET"], "post")
    result = r.match("GET", "/users/7/posts/hello")
    assert result == Match(route, "post", {"id": 7, "slug": "hello"})


def test_endpoint_type_is_generic() -> None:
    def handler() -> int:
        return 42

    r: Router[object] = Router()
    r.add("/", ["GET"], handler)
    result = r.match("GET", "/")
    assert isinstance(result, Match)
    assert result.endpoint is handler


# ------------------------------------------------------------------ static paths


def test_static_paths() -> None:
    r = router(("/", ["GET"], "root"), ("/users", ["GET"], "users"), ("/a/b/c", ["GET"], "abc"))
    assert matched(r.match("GET", "/")).endpoint == "root"
    assert matched(r.match("GET", "/users")).endpoint == "users"
    assert matched(r.match("GET", "/a/b/c")).endpoint == "abc"
    assert r.match("GET", "/a/b") == NotFound()
    assert r.match("GET", "/a/b/c/d") == NotFound()
    assert r.match("GET", "/nope") == NotFound()


def test_empty_path_is_root() -> None:
    r = router(("/", ["GET"], "root"))
    assert matched(r.match("GET", "")).endpoint == "root"


def test_root_is_an_ordinary_route() -> None:
    r = router(("/users", ["GET"], "users"))
    assert r.match("GET", "/") == NotFound()
    assert r.match("GET", "") == NotFound()


def test_trailing_slash_is_significant() -> None:
    r = router(("/users", ["GET"], "no-slash"), ("/items/", ["GET"], "slash"))
    assert matched(r.match("GET", "/users")).endpoint == "no-slash"
    assert r.match("GET", "/users/") == NotFound()
    assert matched(r.match("GET", "/items/")).endpoint == "slash"
    assert r.match("GET", "/items") == NotFound()


def test_empty_segments_are_significant() -> None:
    r = router(("/a//b", ["GET"], "double"))
    assert matched(r.match("GET", "/a//b")).endpoint == "double"
    assert r.match("GET", "/a/b") == NotFound()


@pytest.mark.parametrize("path", ["*", "users", "http://example.com/users"])
def test_path_without_leading_slash_is_not_found(path: str) -> None:
    r = router(("/users", ["GET"], "users"), ("/{rest:path}", ["GET"], "all"))
    assert r.match("GET", path) == NotFound()


# ------------------------------------------------------------------ converters


def test_default_converter_is_str() -> None:
    r: Router[str] = Router()
    plain = r.add("/users/{name}", ["GET"], "plain")
    result = matched(r.match("GET", "/users/alice"))
    assert result.route is plain
    assert result.params == {"name": "alice"}
    # "{name}" and "{name:str}" are the same template, so GET clashes.
    with pytest.raises(RouteDefinitionError):
        r.add("/users/{name:str}", ["GET"], "explicit")


def test_str_matches_one_non_empty_segment() -> None:
    r = router(("/users/{name:str}", ["GET"], "user"))
    assert matched(r.match("GET", "/users/42")).params == {"name": "42"}
    assert r.match("GET", "/users/") == NotFound()
    assert r.match("GET", "/users/a/b") == NotFound()
    assert r.match("GET", "/users") == NotFound()


def test_int_converter() -> None:
    r = router(("/n/{x:int}", ["GET"], "n"))
    params = matched(r.match("GET", "/n/42")).params
    assert params == {"x": 42}
    assert type(params["x"]) is int
    assert matched(r.match("GET", "/n/007")).params == {"x": 7}
    assert matched(r.match("GET", "/n/0")).params == {"x": 0}


@pytest.mark.parametrize(
    "segment",
    ["", "-1", "+1", "1.5", "1e3", "abc", "12a", " 1", "1_000", "%C2%B2", "%D9%A3", "%EF%BC%91"],
)
def test_int_converter_rejects_non_ascii_digits(segment: str) -> None:
    # %C2%B2 is "²", %D9%A3 is Arabic-Indic three, %EF%BC%91 is a fullwidth one: all
    # str.isdigit(), none ASCII.
    r = router(("/n/{x:int}", ["GET"], "n"))
    assert r.match("GET", f"/n/{segment}") == NotFound()


def test_int_too_long_for_int_falls_through_to_str() -> None:
    # Python refuses int() on strings past sys.get_int_max_str_digits() (4300 by default).
    digits = "9" * 5000
    r = router(("/n/{x:int}", ["GET"], "int"), ("/n/{x}", ["GET"], "str"))
    result = matched(r.match("GET", f"/n/{digits}"))
    assert result.endpoint == "str"
    assert result.params == {"x": digits}
    only_int = router(("/n/{x:int}", ["GET"], "int"))
    assert only_int.match("GET", f"/n/{digits}") == NotFound()


def test_path_converter_takes_the_remainder() -> None:
    r = router(("/files/{rest:path}", ["GET"], "files"))
    assert matched(r.match("GET", "/files/a/b/c.txt")).params == {"rest": "a/b/c.txt"}
    assert matched(r.match("GET", "/files/a/")).params == {"rest": "a/"}
    assert matched(r.match("GET", "/files//x")).params == {"rest": "/x"}
    assert matched(r.match("GET", "/files/")).params == {"rest": ""}
    # The "/" before the parameter is part of the template.
    assert r.match("GET", "/files") == NotFound()


def test_path_converter_at_root_catches_everything() -> None:
    r = router(("/{rest:path}", ["GET"], "all"))
    assert matched(r.match("GET", "/")).params == {"rest": ""}
    assert matched(r.match("GET", "")).params == {"rest": ""}
    assert matched(r.match("GET", "/x/y")).params == {"rest": "x/y"}


def test_path_converter_after_other_params() -> None:
    r = router(("/u/{id:int}/{name}/{rest:path}", ["GET"], "mixed"))
    params = matched(r.match("GET", "/u/3/bob/x/y")).params
    assert params == {"id": 3, "name": "bob", "rest": "x/y"}


# ------------------------------------------------------------------ percent-decoding


def test_encoded_slash_stays_inside_its_segment() -> None:
    r = router(("/a/b", ["GET"], "static"), ("/{name}", ["GET"], "param"))
    result = matched(r.match("GET", "/a%2Fb"))
    assert result.endpoint == "param"
    assert result.params == {"name": "a/b"}
    assert matched(r.match("GET", "/a%2fb")).params == {"name": "a/b"}
    assert matched(r.match("GET", "/a/b")).endpoint == "static"


def test_encoded_slash_does_not_match_a_static_two_segment_route() -> None:
    r = router(("/a/b", ["GET"], "static"))
    assert r.match("GET", "/a%2Fb") == NotFound()


def test_static_segments_compare_decoded() -> None:
    r = router(("/café", ["GET"], "cafe"), ("/hello world", ["GET"], "space"))
    assert matched(r.match("GET", "/caf%C3%A9")).endpoint == "cafe"
    assert matched(r.match("GET", "/caf%c3%a9")).endpoint == "cafe"
    assert matched(r.match("GET", "/%63afé")).endpoint == "cafe"
    assert matched(r.match("GET", "/hello%20world")).endpoint == "space"


def test_params_are_decoded() -> None:
    r = router(("/s/{x}", ["GET"], "s"), ("/i/{x:int}", ["GET"], "i"))
    assert matched(r.match("GET", "/s/caf%C3%A9")).params == {"x": "café"}
    assert matched(r.match("GET", "/s/%E2%82%AC%20100")).params == {"x": "€ 100"}
    assert matched(r.match("GET", "/i/%31%32")).params == {"x": 12}


def test_path_remainder_is_decoded_as_a_whole() -> None:
    r = router(("/f/{rest:path}", ["GET"], "f"))
    assert matched(r.match("GET", "/f/a%2Fb/c%20d/caf%C3%A9")).params == {"rest": "a/b/c d/café"}


def test_malformed_escapes_stay_literal() -> None:
    r = router(("/s/{x}", ["GET"], "s"), ("/100%", ["GET"], "pct"))
    assert matched(r.match("GET", "/s/%zz")).params == {"x": "%zz"}
    assert matched(r.match("GET", "/s/%4")).params == {"x": "%4"}
    assert matched(r.match("GET", "/100%")).endpoint == "pct"
    assert matched(r.match("GET", "/100%25")).endpoint == "pct"


@pytest.mark.parametrize(
    "path",
    [
        "/s/%FF",  # never valid in UTF-8
        "/s/%C3",  # truncated two-byte sequence
        "/s/%C3%28",  # bad continuation byte
        "/s/%ED%A0%80",  # encoded surrogate
        "/s/%C0%AF",  # overlong "/"
        "/f/x/%80",  # lone continuation byte, inside a {path} remainder
    ],
)
def test_invalid_utf8_is_not_found(path: str) -> None:
    r = router(("/s/{x}", ["GET"], "s"), ("/f/{rest:path}", ["GET"], "f"))
    assert r.match("GET", path) == NotFound()


def test_invalid_utf8_anywhere_is_not_found_even_under_a_catch_all() -> None:
    r = router(("/{rest:path}", ["GET"], "all"))
    assert r.match("GET", "/ok/%FF") == NotFound()
    assert r.match("OPTIONS", "/%FF") == NotFound()


# ------------------------------------------------------------------ precedence and backtracking


def test_static_beats_params() -> None:
    r = router(
        ("/users/{rest:path}", ["GET"], "path"),
        ("/users/{name}", ["GET"], "str"),
        ("/users/{id:int}", ["GET"], "int"),
        ("/users/me", ["GET"], "me"),
        ("/users/42", ["GET"], "static42"),
    )
    assert matched(r.match("GET", "/users/me")).endpoint == "me"
    assert matched(r.match("GET", "/users/42")).endpoint == "static42"


def test_int_then_str_then_path() -> None:
    r = router(
        ("/users/{rest:path}", ["GET"], "path"),
        ("/users/{name}", ["GET"], "str"),
        ("/users/{id:int}", ["GET"], "int"),
    )
    assert matched(r.match("GET", "/users/42")) == Match(r.routes[2], "int", {"id": 42})
    assert matched(r.match("GET", "/users/bob")) == Match(r.routes[1], "str", {"name": "bob"})
    assert matched(r.match("GET", "/users/a/b")) == Match(r.routes[0], "path", {"rest": "a/b"})
    assert matched(r.match("GET", "/users/")) == Match(r.routes[0], "path", {"rest": ""})


def test_precedence_does_not_depend_on_registration_order() -> None:
    forward = router(("/x/{id:int}", ["GET"], "int"), ("/x/{name}", ["GET"], "str"))
    backward = router(("/x/{name}", ["GET"], "str"), ("/x/{id:int}", ["GET"], "int"))
    assert matched(forward.match("GET", "/x/1")).endpoint == "int"
    assert matched(backward.match("GET", "/x/1")).endpoint == "int"


def test_backtracks_from_static_to_param() -> None:
    r = router(("/a/{x}/c", ["GET"], "param"), ("/a/b/d", ["GET"], "static"))
    assert matched(r.match("GET", "/a/b/c")) == Match(r.routes[0], "param", {"x": "b"})
    assert matched(r.match("GET", "/a/b/d")).endpoint == "static"


def test_backtracks_from_int_to_str() -> None:
    r = router(("/n/{id:int}/x", ["GET"], "int"), ("/n/{name}/y", ["GET"], "str"))
    assert matched(r.match("GET", "/n/5/x")).params == {"id": 5}
    assert matched(r.match("GET", "/n/5/y")).params == {"name": "5"}


def test_backtracks_to_path_after_a_deep_failure() -> None:
    r = router(
        ("/a/b/c/d", ["GET"], "static"),
        ("/a/{x}/c/e", ["GET"], "str"),
        ("/a/{rest:path}", ["GET"], "path"),
    )
    assert matched(r.match("GET", "/a/b/c/d")).endpoint == "static"
    assert matched(r.match("GET", "/a/b/c/e")).params == {"x": "b"}
    assert matched(r.match("GET", "/a/b/c/f")).params == {"rest": "b/c/f"}


def test_params_from_an_abandoned_branch_do_not_leak() -> None:
    r = router(("/{a:int}/{b:int}/z", ["GET"], "ints"), ("/{c}/{d}/y", ["GET"], "strs"))
    assert matched(r.match("GET", "/1/2/y")).params == {"c": "1", "d": "2"}


# ------------------------------------------------------------------ methods


def test_method_comparison_is_case_insensitive() -> None:
    r = router(("/x", ["post"], "x"))
    assert matched(r.match("POST", "/x")).endpoint == "x"
    assert matched(r.match("post", "/x")).endpoint == "x"
    assert matched(r.match("PoSt", "/x")).endpoint == "x"


def test_404_versus_405() -> None:
    r = router(("/items", ["GET"], "list"), ("/items", ["POST"], "create"))
    assert r.match("DELETE", "/nope") == NotFound()
    result = r.match("DELETE", "/items")
    assert result == MethodNotAllowed(frozenset({"GET", "HEAD", "POST", "OPTIONS"}))
    assert isinstance(result, MethodNotAllowed)
    assert result.allow_header() == "GET, HEAD, OPTIONS, POST"


def test_405_without_get_has_no_head() -> None:
    r = router(("/hook", ["POST"], "hook"))
    result = r.match("GET", "/hook")
    assert isinstance(result, MethodNotAllowed)
    assert result.allowed == frozenset({"POST", "OPTIONS"})
    assert result.allow_header() == "OPTIONS, POST"
    assert r.match("HEAD", "/hook") == result


def test_head_is_served_by_get() -> None:
    r: Router[str] = Router()
    get = r.add("/page", ["GET"], "page")
    assert r.match("HEAD", "/page") == Match(get, "page", {})
    assert r.match("head", "/page") == Match(get, "page", {})


def test_head_via_get_with_params() -> None:
    r: Router[str] = Router()
    get = r.add("/u/{id:int}", ["GET"], "user")
    assert r.match("HEAD", "/u/9") == Match(get, "user", {"id": 9})


def test_explicit_head_overrides_get() -> None:
    r: Router[str] = Router()
    get = r.add("/page", ["GET"], "get")
    head = r.add("/page", ["HEAD"], "head")
    assert r.match("HEAD", "/page") == Match(head, "head", {})
    assert r.match("GET", "/page") == Match(get, "get", {})


def test_automatic_options() -> None:
    r = router(("/items", ["GET", "POST"], "items"))
    result = r.match("OPTIONS", "/items")
    assert result == AutoOptions(frozenset({"GET", "HEAD", "POST", "OPTIONS"}))
    assert isinstance(result, AutoOptions)
    assert result.allow_header() == "GET, HEAD, OPTIONS, POST"
    assert r.match("OPTIONS", "/missing") == NotFound()


def test_explicit_options_overrides_auto_options() -> None:
    r: Router[str] = Router()
    r.add("/items", ["GET"], "items")
    options = r.add("/items", ["OPTIONS"], "cors")
    assert r.match("OPTIONS", "/items") == Match(options, "cors", {})
    result = r.match("PUT", "/items")
    assert isinstance(result, MethodNotAllowed)
    assert result.allow_header() == "GET, HEAD, OPTIONS"


def test_first_matching_template_with_the_method_wins() -> None:
    r = router(
        ("/f/{name}", ["GET"], "str-get"),
        ("/f/{rest:path}", ["GET", "POST"], "path"),
        ("/f/{id:int}", ["PUT"], "int-put"),
    )
    assert matched(r.match("PUT", "/f/1")).endpoint == "int-put"
    # int comes first but has no GET; str is next.
    assert matched(r.match("GET", "/f/1")) == Match(r.routes[0], "str-get", {"name": "1"})
    # Only the path template has POST.
    assert matched(r.match("POST", "/f/1")) == Match(r.routes[1], "path", {"rest": "1"})


def test_405_allowed_is_the_union_over_matching_templates() -> None:
    r = router(
        ("/f/{id:int}", ["PUT"], "int"),
        ("/f/{name}", ["GET"], "str"),
        ("/f/{rest:path}", ["POST"], "path"),
        ("/f/static", ["PATCH"], "static"),
    )
    result = r.match("DELETE", "/f/1")
    assert isinstance(result, MethodNotAllowed)
    assert result.allow_header() == "GET, HEAD, OPTIONS, POST, PUT"
    # "/f/a/b" only matches the path template.
    only_path = r.match("DELETE", "/f/a/b")
    assert only_path == MethodNotAllowed(frozenset({"POST", "OPTIONS"}))
    auto = r.match("OPTIONS", "/f/static")
    assert auto == AutoOptions(frozenset({"PATCH", "GET", "HEAD", "POST", "OPTIONS"}))


def test_head_uses_get_of_the_first_template_that_has_get() -> None:
    # A template's GET serves its HEAD, so the higher-precedence GET beats a lower HEAD.
    r = router(("/f/{id:int}", ["GET"], "int-get"), ("/f/{name}", ["HEAD"], "str-head"))
    assert matched(r.match("HEAD", "/f/1")).endpoint == "int-get"
    assert matched(r.match("HEAD", "/f/x")).endpoint == "str-head"


def test_explicit_options_on_a_lower_template_beats_auto_options() -> None:
    r = router(("/f/{id:int}", ["GET"], "int-get"), ("/f/{rest:path}", ["OPTIONS"], "cors"))
    assert matched(r.match("OPTIONS", "/f/1")).endpoint == "cors"


def test_equivalent_templates_share_methods_but_keep_their_param_names() -> None:
    r: Router[str] = Router()
    get = r.add("/u/{id:int}", ["GET"], "get")
    post = r.add("/u/{uid:int}", ["POST"], "post")
    assert r.match("GET", "/u/1") == Match(get, "get", {"id": 1})
    assert r.match("POST", "/u/1") == Match(post, "post", {"uid": 1})
    assert r.match("DELETE", "/u/1") == MethodNotAllowed(
        frozenset({"GET", "HEAD", "POST", "OPTIONS"})
    )


def test_arbitrary_method_strings_do_not_raise() -> None:
    r = router(("/x", ["GET"], "x"))
    for method in ["", " ", "G ET", "ÄÖÜ", "\x00", "ß"]:
        result = r.match(method, "/x")
        assert result == MethodNotAllowed(frozenset({"GET", "HEAD", "OPTIONS"}))


def test_custom_method_tokens() -> None:
    r = router(("/dav", ["PROPFIND", "m-search"], "dav"))
    assert matched(r.match("propfind", "/dav")).endpoint == "dav"
    assert matched(r.match("M-SEARCH", "/dav")).endpoint == "dav"


# ------------------------------------------------------------------ definition errors


def test_route_definition_error_is_a_value_error() -> None:
    assert issubclass(RouteDefinitionError, ValueError)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "must start with '/'"),
        ("users", "must start with '/'"),
        ("users/{id}", "must start with '/'"),
        ("/u/{id:float}", "unknown converter 'float'"),
        ("/u/{id:INT}", "unknown converter 'INT'"),
        ("/u/{id:}", "unknown converter ''"),
        ("/u/{id}/{id}", "duplicate parameter 'id'"),
        ("/u/{id:int}/{id:str}", "duplicate parameter 'id'"),
        ("/{rest:path}/x", "must be the last segment"),
        ("/{rest:path}/", "must be the last segment"),
        ("/{rest:path}/{more:path}", "must be the last segment"),
        ("/u/{id", "malformed segment"),
        ("/u/id}", "malformed segment"),
        ("/u/{", "malformed segment"),
        ("/u/}", "malformed segment"),
        ("/u/{{id}}", "malformed segment"),
        ("/u/{a{b}}", "malformed segment"),
        ("/u/{id}{name}", "malformed segment"),
        ("/file-{id}.txt", "malformed segment"),
        ("/files/{name}.txt", "malformed segment"),
        ("/u/x{id}", "malformed segment"),
        ("/u/{}", "bad parameter name ''"),
        ("/u/{:int}", "bad parameter name ''"),
        ("/u/{1id}", "bad parameter name '1id'"),
        ("/u/{my-id}", "bad parameter name 'my-id'"),
        ("/u/{ id }", "bad parameter name ' id '"),
    ],
)
def test_bad_templates(path: str, message: str) -> None:
    r: Router[str] = Router()
    with pytest.raises(RouteDefinitionError, match=re.escape(message)):
        r.add(path, ["GET"], "x")
    assert r.routes == ()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/users", "/users"),
        ("/u/{id}", "/u/{id}"),
        ("/u/{id}", "/u/{name}"),
        ("/u/{id}", "/u/{id:str}"),
        ("/u/{id:int}", "/u/{n:int}"),
        ("/f/{rest:path}", "/f/{other:path}"),
        ("/", "/"),
    ],
)
def test_same_method_on_equivalent_template_is_rejected(first: str, second: str) -> None:
    r: Router[str] = Router()
    r.add(first, ["GET"], "first")
    with pytest.raises(RouteDefinitionError, match=r"GET .* already registered"):
        r.add(second, ["get"], "second")
    # Another method on the equivalent template is fine.
    r.add(second, ["POST"], "second")
    assert [route.endpoint for route in r.routes] == ["first", "second"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/u/{id:int}", "/u/{id}"),
        ("/u/{id}", "/u/{id:path}"),
        ("/u/{id}", "/u/id"),
        ("/users", "/users/"),
        ("/u/{a}/x", "/u/{a}/y"),
    ],
)
def test_different_shapes_do_not_clash(first: str, second: str) -> None:
    r: Router[str] = Router()
    r.add(first, ["GET"], "first")
    r.add(second, ["GET"], "second")
    assert len(r.routes) == 2


def test_failed_add_registers_nothing() -> None:
    r: Router[str] = Router()
    r.add("/x", ["GET"], "get")
    with pytest.raises(RouteDefinitionError):
        r.add("/x", ["POST", "GET"], "clash")
    assert r.match("POST", "/x") == MethodNotAllowed(frozenset({"GET", "HEAD", "OPTIONS"}))
    assert [route.endpoint for route in r.routes] == ["get"]


@pytest.mark.parametrize("methods", [[], ["GET", ""], ["GE T"], ["GET\r\n"], ["(GET)"]])
def test_bad_method_names(methods: list[str]) -> None:
    r: Router[str] = Router()
    with pytest.raises(RouteDefinitionError):
        r.add("/x", methods, "x")
    assert r.routes == ()


def test_methods_must_not_be_a_bare_string() -> None:
    r: Router[str] = Router()
    with pytest.raises(TypeError):
        r.add("/x", "GET", "x")
