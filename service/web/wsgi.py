"""The WSGI entry point for gunicorn."""

from service.web.app import create_app

app = create_app()
