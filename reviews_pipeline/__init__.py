"""The local runtime: the whole pipeline on one machine against an embedded AWS emulator."""
