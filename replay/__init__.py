"""Replay and backtests: recorded history through the very operators live runs."""
