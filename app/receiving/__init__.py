"""Receiving: parcels, scans and return units on the dock."""
