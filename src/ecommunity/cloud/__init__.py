"""The cloud service: accounts, gateway pairing, ingestion and the live relay (FastAPI)."""
