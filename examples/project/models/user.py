"""The user model."""

from dataclasses import asdict, dataclass


@dataclass
class User:
    id: int
    name: str
    email: str = ""
    role: str = "user"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
