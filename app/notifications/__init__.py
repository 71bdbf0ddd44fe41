"""Notification channels: what a user chooses, how a notice is worded, how it is sent."""
