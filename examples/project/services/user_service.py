"""An in-memory user store (swap for a database in a real deployment)."""

import itertools

from models.user import User


class DatabaseError(Exception):
    """Raised when the store cannot serve a request (answered 503 by a route handler)."""


class UserService:
    def __init__(self) -> None:
        self._users: dict[int, User] = {}
        self._ids = itertools.count(1)
        self.available = True

    def list(self) -> list[User]:
        self._check()
        return list(self._users.values())

    def get(self, user_id: int) -> User | None:
        self._check()
        return self._users.get(user_id)

    def create(self, name: str, email: str = "") -> User:
        self._check()
        user = User(id=next(self._ids), name=name, email=email)
        self._users[user.id] = user
        return user

    def _check(self) -> None:
        if not self.available:
            raise DatabaseError("user store unavailable")


users = UserService()
