"""Render Kamailio's configuration from settings: `manage.py kamailio_config --output var/kamailio/kamailio.cfg`."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from telephony.edge import config
from telephony.edge.schema import credentials_view_sql


class Command(BaseCommand):
    help = "Write the SIP edge's Kamailio configuration (docker/kamailio/kamailio.cfg.tmpl filled from settings)."

    def add_arguments(self, parser):
        parser.add_argument("--output", default="-", help="File to write (default: standard output).")
        parser.add_argument("--port", type=int, help="SIP port (default: SIP_EDGE_PORT).")
        parser.add_argument("--listen-host", help="Address to listen on (default: SIP_EDGE_LISTEN_HOST).")
        parser.add_argument("--portal-url", help="How Kamailio reaches the portal (default: SIP_EDGE_PORTAL_URL).")

    def handle(self, *args, output, port, listen_host, portal_url, **options):
        overrides = {}
        if port:
            overrides["port"] = port
        if listen_host:
            overrides["listen_host"] = listen_host
        if portal_url:
            overrides["portal_url"] = portal_url
        try:
            text = config.render(**overrides)
        except ValueError as error:
            raise CommandError(str(error)) from error
        if connection.vendor == "postgresql":
            # The view names PLATFORM_SIP_DOMAIN (the realm of credential trunks): follow the settings.
            with connection.cursor() as cursor:
                cursor.execute(credentials_view_sql())
        if output == "-":
            self.stdout.write(text)
            return
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)  # it holds the database password and the shared secret
        self.stdout.write(f"Wrote {path}")
