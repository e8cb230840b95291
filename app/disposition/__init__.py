"""Disposition rules: which disposition, location and refund action a graded unit gets."""
