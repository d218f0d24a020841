"""The live bus: in-process pub/sub by default, Redis to span several cloud instances."""
