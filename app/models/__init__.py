"""Every ORM model, imported once so Alembic and relationship strings see one registry."""

from app.models.assignment import Assignment, Exclusion
from app.models.base import Base, table_of
from app.models.enterprise import Enterprise
from app.models.enums import (
    LIVE_ASSIGNMENT_STATUSES,
    OPEN_ASSIGNMENT_STATUSES,
    REQUEST_CLOSED,
    REQUEST_OPEN,
    AssignmentOrigin,
    AssignmentStatus,
    CategorySource,
    EnterpriseSize,
    FollowUpKind,
    MatchRunStatus,
    PlanStatus,
    ProviderKind,
    RequestStatus,
    Role,
    Severity,
    Tier,
    Vetting,
)
from app.models.event import Event, IdempotencyKey
from app.models.glossary import GlossaryEntry
from app.models.help_request import HelpRequest
from app.models.match_run import MatchRun
from app.models.notification import Notification, NotificationStatus
from app.models.plan import Feedback, FollowUp, Milestone, MilestoneTemplate, Plan
from app.models.policy import Policy
from app.models.provider import Provider, ProviderConflict
from app.models.request_facts import RequestFacts
from app.models.taxonomy import Category
from app.models.unmatched import UnmatchedReason
from app.models.user import ApiKey, User
from app.models.webhook import WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription

__all__ = [
    "LIVE_ASSIGNMENT_STATUSES",
    "OPEN_ASSIGNMENT_STATUSES",
    "REQUEST_CLOSED",
    "REQUEST_OPEN",
    "ApiKey",
    "Assignment",
    "AssignmentOrigin",
    "AssignmentStatus",
    "Base",
    "Category",
    "CategorySource",
    "Enterprise",
    "EnterpriseSize",
    "Event",
    "Exclusion",
    "Feedback",
    "FollowUp",
    "FollowUpKind",
    "GlossaryEntry",
    "HelpRequest",
    "IdempotencyKey",
    "MatchRun",
    "MatchRunStatus",
    "Milestone",
    "MilestoneTemplate",
    "Notification",
    "NotificationStatus",
    "Plan",
    "PlanStatus",
    "Policy",
    "Provider",
    "ProviderConflict",
    "ProviderKind",
    "RequestFacts",
    "RequestStatus",
    "Role",
    "Severity",
    "Tier",
    "UnmatchedReason",
    "User",
    "Vetting",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "WebhookSubscription",
    "table_of",
]
