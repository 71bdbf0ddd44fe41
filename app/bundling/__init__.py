"""Bundling requests into plans (一企一策): attaching an enterprise's unsettled requests to its
open plan, generating milestones and summaries, and moving a plan on when its requests settle.

Below the domains whose changes trigger it (assignments, requests, publishing of match runs),
which call it; app.plans, the plan as staff, enterprises and providers read and edit it, sits
above them all and builds on it. No import from app.assignments, app.requests or app.plans.
"""
