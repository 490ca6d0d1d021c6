"""The two database objects Kamailio reads and writes in the portal's database (PostgreSQL only).

sip_edge_credentials  a view for auth_db: `username, domain, ha1, ha1b` of every login allowed to register
                      or call: active SIP users of active accounts (domain = their SIP domain) and active
                      credential-auth SIP connections of active accounts (domain = PLATFORM_SIP_DOMAIN, read
                      from settings when the view is (re)created: by migration 0016 and by
                      `manage.py kamailio_config`). Disabling a user or changing a password is visible to the
                      next REGISTER: nothing is cached.
sip_edge_location     usrloc's `location` table (Kamailio 5.6 schema, version 9), written through by Kamailio
                      (db_mode=1) and read by the portal (telephony.edge.registrations).
sip_edge_trusted      a view (migration 0020): `connection_id, address` (inet, a host or a network) of every
                      allow-list entry of active IP-authenticated SIP connections of active accounts, the
                      addresses telephony.edge.routing recognises as trunks. Kamailio's flood limit (pike) spares
                      them: a carrier legitimately sends more calls a second than any phone.
"""

from __future__ import annotations

import re

from django.conf import settings

_HOSTNAME = re.compile(r"^[A-Za-z0-9.-]+$")


def credentials_view_sql() -> str:
    domain = settings.PLATFORM_SIP_DOMAIN
    if not _HOSTNAME.match(domain):
        raise ValueError("PLATFORM_SIP_DOMAIN must be a hostname")
    # A view definition takes no bind parameters; the domain was checked to be a bare hostname above.
    return f"""
CREATE OR REPLACE VIEW sip_edge_credentials AS
SELECT u.login::varchar(64) AS username, d.domain::varchar(255) AS domain, u.ha1, u.ha1b
  FROM telephony_sipuser u
  JOIN telephony_sipdomain d ON d.id = u.domain_id
  JOIN tenants_account a ON a.id = u.account_id
 WHERE u.is_active AND a.status = 'active'
UNION ALL
SELECT c.username::varchar(64), '{domain}'::varchar(255), c.ha1, c.ha1b
  FROM telephony_sipconnection c
  JOIN tenants_account a ON a.id = c.account_id
 WHERE c.is_active AND c.auth_type = 'credentials' AND c.username IS NOT NULL AND a.status = 'active'
"""  # noqa: S608


LOCATION_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS sip_edge_location (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(255) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT sip_edge_location_ruid_idx UNIQUE (ruid)
);
CREATE INDEX IF NOT EXISTS sip_edge_location_account_contact_idx ON sip_edge_location (username, domain, contact);
CREATE INDEX IF NOT EXISTS sip_edge_location_expires_idx ON sip_edge_location (expires);
CREATE INDEX IF NOT EXISTS sip_edge_location_connection_idx ON sip_edge_location (server_id, connection_id);
"""

DROP_SQL = "DROP VIEW IF EXISTS sip_edge_credentials; DROP TABLE IF EXISTS sip_edge_location;"

# Entries are validated IPs or CIDRs (telephony.services.sip.rules). One written around the services (a shell, a
# fixture, an old row) that PostgreSQL cannot read as inet is left out rather than failing every query on the view,
# which would leave every trunk over the flood limit unrecognised: no pattern catches them all (127.0.0.999,
# /33, 1:::2), so the cast itself is tried.
TRUSTED_VIEW_SQL = """
CREATE OR REPLACE FUNCTION sip_edge_inet(value text) RETURNS inet LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::inet;
EXCEPTION WHEN invalid_text_representation OR invalid_binary_representation THEN
    RETURN NULL;
END
$$;
CREATE OR REPLACE VIEW sip_edge_trusted AS
SELECT c.id AS connection_id, sip_edge_inet(ip.value) AS address
  FROM telephony_sipconnection c
  JOIN tenants_account a ON a.id = c.account_id
 CROSS JOIN LATERAL jsonb_array_elements_text(
       CASE WHEN jsonb_typeof(c.allowed_ips) = 'array' THEN c.allowed_ips ELSE '[]'::jsonb END) AS ip(value)
 WHERE c.is_active AND c.auth_type = 'ip' AND a.status = 'active'
"""
TRUSTED_DROP_SQL = "DROP VIEW IF EXISTS sip_edge_trusted; DROP FUNCTION IF EXISTS sip_edge_inet(text)"
