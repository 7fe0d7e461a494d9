"""Scanner-safe magic links with Flask (SPEC §5.9, §12): the guest's page as a blueprint."""

from __future__ import annotations

from flask import Flask

from magiclink import Services
from magiclink.web import flask_blueprint


def create_app(services: Services, secret_key: str) -> Flask:
    """A Flask app serving the guest's page on the path of `Settings.link_base_url`."""
    app = Flask(__name__)
    app.register_blueprint(flask_blueprint(services, secret_key=secret_key))
    return app
