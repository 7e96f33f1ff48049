"""Where the tests find real review files, and what each of them holds."""

from pathlib import Path

from reviews_pipeline.reliability.inputs import ACCEPT, REJECT, reference_files

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
"""The reference collection of real Amazon review files, beside the repository (../shared/data)."""
SAMPLES = REPO / "samples"
"""The small real samples bundled with the repository (see samples/PROVENANCE.md)."""

REAL_FILES = reference_files(SHARED_DATA)
"""Every file in ../shared/data and what the validator makes of it as training data."""

__all__ = ["ACCEPT", "REAL_FILES", "REJECT", "REPO", "SAMPLES", "SHARED_DATA"]
