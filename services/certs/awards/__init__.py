"""What certificates are made of: effective awards as credits announced them (event credits.effective)."""
