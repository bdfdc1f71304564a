"""gunicorn entry: gunicorn services.certs.wsgi:app"""

from .app import create_app

app = create_app()
