"""Certs service: certificates, rendered PDFs, public verification."""
