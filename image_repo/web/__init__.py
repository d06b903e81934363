"""The WSGI application: create_app, the WSGI entry, serving under Gunicorn, the fast path."""
