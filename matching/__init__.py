"""zhuqi matching engine."""
