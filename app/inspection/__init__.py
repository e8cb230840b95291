"""Unit inspection: photos and inspection records."""
