"""The funnel's steps, in order (PLAYBOOK.md "The acquisition funnel").

The first four happen in the app and are reported to POST /api/funnel/events; the rest are
written by sopbot in the same transaction as the state change they count.
"""

from __future__ import annotations

TARGETED = "targeted"
IMPRESSION = "impression"
CLICK = "click"
LANDING = "landing"
FRIEND_ADDED = "friend_added"
WELCOME_SENT = "welcome_sent"
VERIFY_OPENED = "verify_opened"
SUBMITTED = "submitted"
APPROVED = "approved"
REJECTED = "rejected"
ROUTED = "routed"
JOINED = "joined"

ORDER = (TARGETED, IMPRESSION, CLICK, LANDING, FRIEND_ADDED, WELCOME_SENT, VERIFY_OPENED,
         SUBMITTED, APPROVED, REJECTED, ROUTED, JOINED)
APP_STEPS = (TARGETED, IMPRESSION, CLICK, LANDING)

# Counted beside the steps, not part of the conversion chain.
WELCOME_SKIPPED = "welcome_skipped"    # no WelcomeCode: a console welcome or another app has it
WELCOME_MISSED = "welcome_missed"      # queued but not delivered (expired, 41050, dead)
DEFAULT_CHANNEL_USED = "default_channel"  # the add's state named no known channel/slot

# Churn, counted beside the steps too: a member leaving a customer group, or deleting their
# staff member (the customer's side of the friendship).
LEFT_GROUP = "left_group"
DELETED_STAFF = "deleted_staff"
