"""Training: pydantic configs, patch datasets, Lightning modules, checkpointed runs."""
