"""Deadline reminders by SMS (daily Celery beat task projects.send_reminders)."""
