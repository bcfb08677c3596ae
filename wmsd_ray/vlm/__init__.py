"""VLM proposers and judges: backends (transformers, vLLM, HTTP), prompts, strict parsers, tiny test models."""
