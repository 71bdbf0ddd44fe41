"""The numbers coordinators watch: funnel, time to match and resolve, rates, provider load."""
