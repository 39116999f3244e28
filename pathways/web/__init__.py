"""`pathways serve`: the HTTP API for integrations and the coordinators' pages, over the same
library the CLI uses (App), with the same checks and the same `--json` keys."""
