"""Company routes: the standard record routes (list, search, batch, CRUD, archive, history)."""
from __future__ import annotations

from chalice import Blueprint

from functions.companies.service import companies
from layers.records.routes import register_record_routes

bp = Blueprint(__name__)
register_record_routes(bp, companies, tag="Companies")
