"""考勤分析 (attendance analysis): the valid attendees of an activity under an explicit rule."""

from .rules import Attendee, Rule, WindowPick, describe, pair_windows, valid_attendees

__all__ = ["Attendee", "Rule", "WindowPick", "describe", "pair_windows", "valid_attendees"]
