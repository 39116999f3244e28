"""pathways_notifications: renders (Jinja2) and delivers the messages the engine queues."""
