"""The call engine: runs call-flow documents on call legs, durably, in Celery tasks on the `calls` queue.

    runner.py     the `advance` task's loop (claim, step, release, again while there is work), the sweeper, failures
    claims.py     claims on calls, and the kick that queues a call for a worker
    step.py       one step under a claim: apply due wake-ups, run commands until one waits, save in one transaction
    commands.py   one handler per call-flow tag
    routing.py    inbound routing: route_inbound(from, to, source) and inbound_call(...)
    limits.py     channel limits per app, SIP connection and account
    fetch.py      requests to customers' servers (through telephony.http), recorded per call
    documents.py  the documents calls run (an app's XML, forwarding flows, fetched XML)
    variables.py  a call's variables and {{name}} substitution
    context.py    the writes of one step, applied in one transaction
    geo.py        US states of North American area codes, for <Geo>

Leg writes (creation, state changes, the switch's reports) are services in telephony/services/calls.py; the
switch itself is behind telephony/switch (base.py is the adapter interface).
"""
