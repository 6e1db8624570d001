"""Queues and the transactional outbox."""
