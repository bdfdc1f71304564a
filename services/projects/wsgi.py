"""gunicorn entry: gunicorn services.projects.wsgi:app"""

from .app import create_app

app = create_app()
