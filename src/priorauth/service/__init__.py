"""The service layer: use cases (submit, review, appeal, report) over a unit of work."""
