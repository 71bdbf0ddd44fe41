"""Signed webhooks (Standard Webhooks): subscriptions, the delivery outbox, retries."""
