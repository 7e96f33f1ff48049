"""Where the tests find real review files."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
"""The reference collection of real Amazon review files, beside the repository (../shared/data)."""
SAMPLES = REPO / "samples"
"""The small real samples bundled with the repository (see samples/PROVENANCE.md)."""
