"""Every action, view callback and block id the app uses, in one place."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    CLAIM = "poam.claim"
    SHOW = "poam.show"
    HISTORY = "poam.history"
    ADD_MILESTONE = "poam.milestone.add"
    COMPLETE_MILESTONE = "poam.milestone.done"
    LIST_PAGE = "poam.list.page"
    LOG_FINDING = "poam.log.open"
    VERIFY = "poam.verify"
    REJECT_FIX = "poam.reject"
    APPROVE_PLAN = "poam.plan.approve"
    DECIDE_APPROVE = "poam.decide.approve"
    DECIDE_REJECT = "poam.decide.reject"


class CallbackId(StrEnum):
    LOG_MODAL = "poam.log.modal"
    MILESTONE_MODAL = "poam.milestone.modal"
    ITEM_MODAL = "poam.item.modal"
    LOG_FROM_MESSAGE = "poam.log.from_message"
    REJECT_MODAL = "poam.reject.modal"
    IMPORT_MODAL = "poam.import.modal"
    IMPORT_CONFIRM = "poam.import.confirm"


class BlockId(StrEnum):
    """Input blocks of the modals; each holds one element whose action id is ``value``."""

    TITLE = "title"
    DESCRIPTION = "description"
    SEVERITY = "severity"
    CONTROLS = "controls"
    SOURCE = "source"
    ASSETS = "assets"
    CVES = "cves"
    DETECTED = "detected"
    DUE = "due"
    OWNER = "owner"
    SYSTEM = "system"
    MILESTONE_TEXT = "milestone_text"
    MILESTONE_DUE = "milestone_due"
    REASON = "reason"
    FILE = "file"


#: The one action id inside every input block (its block id says which field).
VALUE = "value"
