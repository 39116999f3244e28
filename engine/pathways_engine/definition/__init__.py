"""The definition format: strict YAML, the pydantic model, graph checks, compiling, the registry."""
