"""Checkin service: activities (approved offerings), check-in windows, rotating QR, WeChat OAuth, check-ins."""
