"""Health: member states (model, tracker: pure), probes and the monitor thread (edge)."""
