"""Accountability: routed cases, owner notifications, trends, spike alerts and the monthly report."""
