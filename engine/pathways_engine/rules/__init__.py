"""Pure legal arithmetic and the guard language: durations, national calendars, conditions."""
