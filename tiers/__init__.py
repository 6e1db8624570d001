"""Tier entry points (`crm`): api, worker, realtime (coming), web (coming), local all-in-one, operator commands."""
