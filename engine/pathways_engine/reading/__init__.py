"""Read models: show, list, history, overdue, reports (one snapshot each)."""
