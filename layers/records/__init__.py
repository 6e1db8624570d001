"""The machinery every CRM object shares: field history, search, keyset pages, CRUD, batch."""
