"""Xtime service appointments (issue 12, CONTRACT section 8): enrollment, opcodes, at-most-once bookings."""
