"""Hard budget limits at the proxy: shared real-time spend counters, the check, reconciliation."""
