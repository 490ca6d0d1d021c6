"""The SIP edge: Kamailio in front of the portal (docker/kamailio/kamailio.cfg.tmpl, README "SIP edge").

Kamailio registers SIP users and credential trunks against the portal's database (the view and the location
table of migration 0016) and asks the portal, for each new INVITE, where the call goes:

    config.py         renders Kamailio's configuration from settings (`manage.py kamailio_config`)
    registrations.py  reads the registrar's location table (live registrations, contacts to ring)
    routing.py        the decision for a new INVITE: who calls, what is called, which contacts ring
    flows.py          the signalling part of call-control app flows, run on the edge (no media server)
    views.py          the internal endpoints Kamailio calls, authenticated by the shared secret

The call records, events and callbacks are written by telephony.services.sip_edge.
"""
