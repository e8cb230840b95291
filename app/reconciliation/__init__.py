"""Inventory reconciliation: a 3PL's or WMS's stock snapshot against the ledger at its time T."""
