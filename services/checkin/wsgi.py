"""gunicorn entry: gunicorn services.checkin.wsgi:app"""

from .app import create_app

app = create_app()
