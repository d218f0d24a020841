"""The versioned JSON API, one module per resource, all under ``/api/v1``."""
