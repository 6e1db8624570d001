"""Database layer: engine, declarative base, tenancy, unit of work, migrations."""
