"""Every table's model, imported in one place so metadata is complete (Alembic drift test)."""

from app.archive.models import (
    ArchivedMessage,
    ArchiveQuarantine,
    ArchiveReader,
    GroupActivityDay,
    GroupKeywordDay,
    GroupQuestion,
    MemberStrike,
    OwnerGroupStat,
    Speaker,
    SpeakerDay,
)
from app.calendar.models import Announcement, CalendarPost, ContentItem, GroupDay, SopRun
from app.directory.models import PlatformUser
from app.engine.db import Base
from app.engine.inbox.models import InboxEvent
from app.engine.outbox.models import OutboxMessage, RateSlot
from app.engine.wecom.tokens import AccessToken
from app.funnel.models import ContactCode, FunnelEvent
from app.groups.models import (
    CustomerGroup,
    GroupMember,
    GroupMigration,
    GroupPool,
    WelcomeTemplate,
)
from app.kf.models import (
    KeywordHit,
    KfAccount,
    KfConversation,
    KfDialog,
    KfSendFailure,
    UnansweredQuestion,
)
from app.koc.models import (
    KocAssignment,
    KocMember,
    Recommender,
    Referral,
    ReferralCredit,
    Reward,
)
from app.members.models import Member, MemberHistory
from app.operators.models import ConsoleOperator, ConsoleSession, LoginAttempt
from app.routing.models import CorpTag
from app.verify.models import Verification

__all__ = ["AccessToken", "ArchivedMessage", "ArchiveQuarantine", "ArchiveReader",
           "GroupActivityDay", "GroupKeywordDay", "GroupQuestion", "MemberStrike",
           "OwnerGroupStat", "Speaker", "SpeakerDay", "Base",
           "CalendarPost", "ConsoleOperator", "ConsoleSession",
           "Announcement", "ContentItem", "LoginAttempt",
           "CorpTag", "ContactCode",
           "CustomerGroup", "FunnelEvent", "GroupDay", "GroupMember", "GroupMigration",
           "GroupPool", "InboxEvent", "KeywordHit", "KfAccount", "KfConversation", "KfDialog",
           "KfSendFailure", "KocAssignment", "KocMember", "Member", "MemberHistory",
           "OutboxMessage", "PlatformUser",
           "RateSlot", "Recommender", "Referral", "ReferralCredit", "Reward", "SopRun",
           "UnansweredQuestion", "Verification", "WelcomeTemplate"]
