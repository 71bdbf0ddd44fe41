"""The background worker: match runs, deadline sweeps and the notification outbox."""
