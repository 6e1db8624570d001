"""Real-time capability: who views a record (REST), and the checks the real-time tier asks of capabilities."""
