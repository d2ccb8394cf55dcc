"""What the FAX feature needs from the application: something that places the FAX call."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class FaxSender(Protocol):
    async def send(self, job_id: str, tiff: Path, number: str) -> None:
        """Place one attempt: call `number` (digits the transfer rules allowed) and send
        `tiff`; the result arrives later as `<spool>/out/<job_id>.result`. Raises when the
        call could not even be placed (the attempt then counts as failed)."""
