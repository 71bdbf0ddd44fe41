"""milestone templates per category, richer milestones, plan summaries, completion summary

Every category gets a default template here (the DOMAIN.md taxonomy by name, any category an
admin added before this revision a generic one), so a fresh install has them without a seed.

Revision ID: plan_milestone_templates
Revises: intake_category_source
Create Date: 2026-11-30 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "plan_milestone_templates"
down_revision: str | None = "intake_category_source"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "milestone_templates",
        sa.Column("category_key", sa.String(length=40), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_key"],
            ["categories.key"],
            name=op.f("fk_milestone_templates_category_key_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestone_templates")),
        sa.UniqueConstraint("category_key", name=op.f("uq_milestone_templates_category_key")),
    )
    with op.batch_alter_table("milestones") as batch:
        batch.add_column(sa.Column("request_id", IdType, nullable=True))
        batch.add_column(sa.Column("position", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("title_en", sa.String(length=200), server_default="", nullable=False)
        )
        batch.add_column(
            sa.Column("owner_role", sa.String(length=20), server_default="", nullable=False)
        )
        batch.add_column(sa.Column("owner_provider_id", IdType, nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.create_index(batch.f("ix_milestones_request_id"), ["request_id"], unique=False)
        batch.create_index(
            batch.f("ix_milestones_owner_provider_id"), ["owner_provider_id"], unique=False
        )
        batch.create_foreign_key(
            batch.f("fk_milestones_request_id_help_requests"),
            "help_requests",
            ["request_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            batch.f("fk_milestones_owner_provider_id_providers"),
            "providers",
            ["owner_provider_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("summary_en", sa.Text(), server_default="", nullable=False))
        batch.add_column(
            sa.Column("summary_edited", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(
            sa.Column("completion_summary", sa.Text(), server_default="", nullable=False)
        )
    _insert_default_templates()


def _step(zh: str, en: str, owner: str, clock: str, after: int = 0) -> dict[str, Any]:
    return {"title_zh": zh, "title_en": en, "owner": owner, "clock": clock, "after_days": after}


def _review(after: int = 10) -> dict[str, Any]:
    """The coordinator's visit after the work (the 回访 of 交办→督办→反馈→评价)."""
    return _step("回访", "Follow-up visit", "coordinator", "resolve", after)


P, C = "provider", "coordinator"

# Inlined so this revision never changes with the application code. A step falls due
# ``after`` working days after the category's clock (route / first_feedback / resolve) ends.
DEFAULT_TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "financing": [
        _step("需求诊断", "Needs diagnosis", P, "first_feedback"),
        _step("对接金融机构", "Introductions to banks and guarantors", P, "first_feedback", 2),
        _step("方案与材料", "Financing plan and documents", P, "resolve"),
        _step("授信/放款", "Credit approval / disbursement", P, "resolve", 10),
        _review(15),
    ],
    "cost_reduction": [
        _step("成本诊断", "Cost diagnosis", P, "first_feedback"),
        _step("降本方案（原材料、物流）", "Savings plan (materials, logistics)", P, "resolve"),
        _step("供应商与物流对接", "Supplier and logistics sourcing", P, "resolve", 5),
        _review(),
    ],
    "orders_market": [
        _step("市场与产品诊断", "Market and product diagnosis", P, "first_feedback"),
        _step("渠道与客户对接", "Channel and buyer introductions", P, "resolve"),
        _step("订单跟进", "Order follow-through", P, "resolve", 10),
        _review(),
    ],
    "receivables": [
        _step("账款梳理与证据固定", "Review receivables, secure evidence", P, "first_feedback"),
        _step("协商催收", "Negotiated collection", P, "resolve"),
        _step("调解或诉讼", "Mediation or litigation", P, "resolve", 10),
        _review(),
    ],
    "technology_rd": [
        _step("技术需求诊断", "Technical needs diagnosis", P, "first_feedback"),
        _step("专家与院所对接", "Introductions to experts and institutes", C, "first_feedback", 5),
        _step("攻关方案", "R&D plan", P, "first_feedback", 10),
        _step("试制与验证", "Prototype and validation", P, "resolve"),
        _review(),
    ],
    "digital_transformation": [
        _step("数字化诊断", "Digital maturity assessment", P, "first_feedback"),
        _step(
            "方案与选型（MES/ERP/上云）",
            "Plan and tool selection (MES/ERP/cloud)",
            P,
            "first_feedback",
            7,
        ),
        _step("实施上线", "Implementation and go-live", P, "resolve"),
        _step("培训与验收", "Training and acceptance", P, "resolve", 5),
        _review(),
    ],
    "talent_employment": [
        _step("用工需求诊断", "Staffing needs diagnosis", P, "first_feedback"),
        _step("招聘渠道对接", "Recruitment channel introductions", P, "resolve"),
        _step("招聘与培训落实", "Hiring and training done", P, "resolve", 10),
        _review(),
    ],
    "management": [
        _step("管理诊断", "Management diagnosis", P, "first_feedback"),
        _step("改进方案", "Improvement plan", P, "resolve"),
        _step("落地辅导", "On-site coaching", P, "resolve", 10),
        _review(),
    ],
    "legal_ip": [
        _step("法律问题诊断", "Legal diagnosis", P, "first_feedback"),
        _step("法律意见或维权方案", "Legal opinion or enforcement plan", P, "resolve"),
        _step("文书与申请办理", "Filings and documents", P, "resolve", 5),
        _review(),
    ],
    "policy": [
        _step("政策匹配与资格预审", "Policy match and eligibility check", P, "first_feedback"),
        _step("申报材料准备", "Application documents", P, "resolve"),
        _step("提交申报", "Application submitted", P, "resolve", 3),
        _step("结果跟踪", "Outcome tracked", C, "resolve", 20),
        _review(25),
    ],
    "supply_chain": [
        _step("断点堵点诊断", "Supply-gap diagnosis", P, "first_feedback"),
        _step("上下游对接", "Upstream and downstream introductions", C, "first_feedback", 5),
        _step("替代供应验证", "Alternative supply validated", P, "resolve"),
        _review(),
    ],
    "quality_brand": [
        _step("质量与品牌诊断", "Quality and brand diagnosis", P, "first_feedback"),
        _step("标准与认证方案", "Standards and certification plan", P, "resolve"),
        _step("认证辅导与品牌推广", "Certification coaching, brand promotion", P, "resolve", 10),
        _review(),
    ],
    "export": [
        _step("外贸需求诊断", "Export needs diagnosis", P, "first_feedback"),
        _step("市场、关税与汇率方案", "Market, tariff and FX plan", P, "resolve"),
        _step("客户对接与订单履约", "Buyer introductions, order fulfilment", P, "resolve", 10),
        _review(),
    ],
}

GENERIC = [
    _step("需求诊断", "Needs diagnosis", P, "first_feedback"),
    _step("方案与实施", "Plan and delivery", P, "resolve"),
    _review(),
]


def _insert_default_templates() -> None:
    keys = op.get_bind().execute(sa.text("SELECT key FROM categories ORDER BY key")).scalars()
    table = sa.table(
        "milestone_templates",
        sa.column("category_key", sa.String),
        sa.column("steps", sa.JSON),
        sa.column("version", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    rows = [
        {
            "category_key": key,
            "steps": DEFAULT_TEMPLATES.get(key, GENERIC),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for key in keys
    ]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("completion_summary")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("summary_edited")
        batch.drop_column("summary_en")
    with op.batch_alter_table("milestones") as batch:
        batch.drop_constraint(
            batch.f("fk_milestones_owner_provider_id_providers"), type_="foreignkey"
        )
        batch.drop_constraint(batch.f("fk_milestones_request_id_help_requests"), type_="foreignkey")
        batch.drop_index(batch.f("ix_milestones_owner_provider_id"))
        batch.drop_index(batch.f("ix_milestones_request_id"))
        batch.drop_column("version")
        batch.drop_column("owner_provider_id")
        batch.drop_column("owner_role")
        batch.drop_column("title_en")
        batch.drop_column("position")
        batch.drop_column("request_id")
    op.drop_table("milestone_templates")
