"""Reusable UI pieces for the dashboard's pages. Only `components.state` names session-state keys."""
