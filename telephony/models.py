"""Telephony models arrive with the provisioning work (numbers, profiles, SIP)."""
