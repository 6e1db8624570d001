"""The real-time layer: Socket.io connections fed from the event log through Redis (tiers/realtime.py)."""
