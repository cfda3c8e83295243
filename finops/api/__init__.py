"""The management API: one authenticated HTTP door over keys, budgets, spend, traces, alerts, exports."""
