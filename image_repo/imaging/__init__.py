"""Pure image work: bytes + DerivationSpec -> bytes; metadata."""
