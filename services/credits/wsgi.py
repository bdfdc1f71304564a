"""gunicorn entry: gunicorn services.credits.wsgi:app"""

from .app import create_app

app = create_app()
