"""``StaticFiles``: serve a directory tree, safely.

``app.mount_static("/static", "public")`` registers ``GET /static/{path:path}`` (HEAD
included) answered by :class:`StaticFiles`; every file goes out as a
:class:`~httpy.framework.files.FileResponse`, so ETags, ``304``, ranges and ``416``
work as they do there.

What reaches :meth:`StaticFiles.lookup` is the router's decoded path parameter: the
router splits the raw path on ``/`` and percent-decodes, so ``%2e%2e`` arrives as
``..``, ``%2f`` as ``/`` and ``%5c`` as ``\\``.  The lookup then refuses, with a 404
(never a 500, never a file outside the root):

* ``.`` and ``..`` segments, backslashes, NUL bytes (an absolute path cannot be formed:
  segments are joined under the root after empty ones are dropped);
* hidden names (a segment starting with ``.``, such as ``.git`` or ``.env``) unless
  ``allow_hidden=True``;
* anything whose real path (``Path.resolve()``, symlinks followed) is not inside the
  root's real path; with ``follow_symlinks=True`` symlinks inside the tree may point
  anywhere (the tree is trusted), but the lexical checks above still apply;
* anything that is not a regular file or a directory.

A directory serves its ``index`` file (``index.html``; ``None`` disables it) or 404; a
directory asked for without its trailing slash is redirected (301) to the URL with the
slash, so relative links in the index work.  The file system is consulted in a worker
thread, not in the event loop.
"""

from __future__ import annotations

import os
import stat
from os import PathLike
from pathlib import Path
from urllib.parse import urlencode

import anyio.to_thread

from .exceptions import HTTPException
from .files import FileResponse, guess_media_type
from .request import Request
from .response import RedirectResponse, Response

__all__ = ["StaticFiles"]


class _Redirect:
    """:meth:`StaticFiles.lookup`'s verdict for a directory without its trailing slash."""


_REDIRECT = _Redirect()


class StaticFiles:
    """A request handler serving the files under ``directory``.

    Use it through :meth:`httpy.App.mount_static`, or as the handler of a route with a
    ``{path:path}`` parameter.  ``directory`` must exist when ``check_dir`` is true.
    """

    def __init__(
        self,
        directory: str | PathLike[str],
        *,
        index: str | None = "index.html",
        follow_symlinks: bool = False,
        allow_hidden: bool = False,
        check_dir: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.root = Path(os.path.realpath(self.directory))
        if check_dir and not self.root.is_dir():
            raise ValueError(f"StaticFiles directory {str(self.directory)!r} is not a directory")
        if index is not None and (not index or "/" in index or index in (".", "..")):
            raise ValueError(f"index must be a plain file name, not {index!r}")
        self.index = index
        self.follow_symlinks = follow_symlinks
        self.allow_hidden = allow_hidden

    async def __call__(self, request: Request) -> Response:
        """The route handler: serves ``request.path_params["path"]``."""
        path = str(request.path_params.get("path", ""))
        found = await anyio.to_thread.run_sync(self.lookup, path)
        if found is None:
            raise HTTPException(404)
        if isinstance(found, _Redirect):
            return RedirectResponse(with_trailing_slash(request), status=301)
        file_path, stat_result = found
        # The type follows the name in the URL, not a symlink target's name.
        name = path.rsplit("/", 1)[-1] or self.index or file_path.name
        return FileResponse(file_path, media_type=guess_media_type(name), stat_result=stat_result)

    def lookup(self, path: str) -> tuple[Path, os.stat_result] | _Redirect | None:
        """The file serving the decoded URL path ``path`` (relative to the root), a
        redirect verdict for a directory asked for without ``/``, or None (404).

        Blocking (it touches the file system): call it from a worker thread.
        """
        if "\x00" in path or "\\" in path:
            return None
        segments = [segment for segment in path.split("/") if segment]
        for segment in segments:
            if segment in (".", ".."):
                return None
            if segment.startswith(".") and not self.allow_hidden:
                return None
        directory_wanted = path == "" or path.endswith("/")
        try:
            target = self._contained(self.root.joinpath(*segments))
            if target is None:
                return None
            stat_result = os.stat(target)
            if stat.S_ISDIR(stat_result.st_mode):
                if self.index is None:
                    return None
                if not directory_wanted:
                    return _REDIRECT
                target = self._contained(target / self.index)
                if target is None:
                    return None
                stat_result = os.stat(target)
            elif directory_wanted:
                return None  # "file.txt/" is not a file
        except (OSError, ValueError):  # ValueError: unencodable names
            return None
        if not stat.S_ISREG(stat_result.st_mode):
            return None
        return target, stat_result

    def _contained(self, candidate: Path) -> Path | None:
        """``candidate``'s real path if it may be served, else None."""
        if self.follow_symlinks:
            # Lexical containment only: the joined segments hold no "..".
            return candidate if candidate.is_relative_to(self.root) else None
        real = Path(os.path.realpath(candidate))
        return real if real.is_relative_to(self.root) else None


def with_trailing_slash(request: Request) -> str:
    """The request's own URL path (and query) with ``/`` appended.

    Leading slashes are collapsed: ``//host/dir`` must not become a protocol-relative
    ``Location`` pointing at another site.
    """
    location = "/" + request.raw_path.lstrip("/") + "/"
    if request.query:
        location += "?" + urlencode(request.query.multi_items())
    return location
