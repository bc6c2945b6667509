"""Where the tests find the repository (and, beside it, the shared reference folder)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
