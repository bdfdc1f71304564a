"""What every service shares: settings, database session, clock, auth tokens,
event envelope and outbox, error format, personal-data crypto, base page layout.

Nothing here imports a service package.
"""
