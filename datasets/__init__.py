"""Data model, storage, ingest and demo data of the dashboard."""
