"""Custom field definitions per object type (values live on the records)."""
