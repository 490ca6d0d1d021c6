"""Q.850 release causes: the number a switch gives for why a call leg ended, and the name people read.

Only the causes the platform reports are named here; any other code is shown as its number alone.
"""

from __future__ import annotations

CAUSES: dict[int, str] = {
    1: "UNALLOCATED_NUMBER",
    16: "NORMAL_CLEARING",
    17: "USER_BUSY",
    18: "NO_USER_RESPONSE",
    19: "NO_ANSWER",
    21: "CALL_REJECTED",
    26: "NON_SELECTED_USER_CLEARING",  # another device answered a call that rang several (a parallel Dial)
    28: "INVALID_NUMBER_FORMAT",
    31: "NORMAL_UNSPECIFIED",
    34: "NO_CIRCUIT",
    38: "NETWORK_OUT_OF_ORDER",
    41: "TEMPORARY_FAILURE",
    79: "SERVICE_NOT_IMPLEMENTED",
    102: "RECOVERY_ON_TIMER_EXPIRE",
    127: "INTERWORKING",
}


def cause_name(code: int | None) -> str | None:
    """16 -> "NORMAL_CLEARING"; None for no code or a code outside the table."""
    if code is None:
        return None
    return CAUSES.get(code)
