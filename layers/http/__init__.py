"""HTTP: the Chalice app shell, the WSGI adapter, middleware, request helpers, OpenAPI, the server."""
