"""The audit trail: the hash chain, keyed MACs, replay of the state tables, checkpoints, verify."""
