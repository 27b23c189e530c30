"""Xtime service appointments (CONTRACT section 8): enrollment, opcodes, at-most-once bookings."""
