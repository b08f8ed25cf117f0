"""What the reachability room reports to the CLI (kept apart so the CLI imports it without the mapper)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReachabilityNote"]


@dataclass(frozen=True, slots=True)
class ReachabilityNote:
    """Something the port mapper or LSD did: ``kind`` is mapped, unmapped, external, failed or unavailable."""

    kind: str
    message: str
    ok: bool

    def to_dict(self) -> dict[str, object]:
        return {"event": "reachability", "kind": self.kind, "message": self.message, "ok": self.ok}
