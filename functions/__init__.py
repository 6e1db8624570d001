"""CRM capabilities: one Chalice Blueprint per folder, all of the same shape."""
