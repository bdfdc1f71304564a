"""Projects service: institutions, SMS login, project catalogue, pre-event filings, committee review."""
