"""Training: Lightning modules, patch datasets, pydantic configs, checkpointed and resumable runs of every method.

Built on :mod:`microsr.models` (whose save functions write the model files); never imports :mod:`microsr.pipelines`.
"""
