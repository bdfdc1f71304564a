"""Rotating QR codes of 微信二维码考勤: tokens (tokens.py) and their images (image.py)."""
