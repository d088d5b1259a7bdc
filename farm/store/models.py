"""SQLAlchemy 2 models of sweeps, groups, cells and per-endpoint measurements."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from farm.life import CellStatus, GroupStatus, SweepStatus


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the store."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class SweepRow(Base):
    """A submitted sweep: its name, the spec as submitted and its fingerprint."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    stack: Mapped[str] = mapped_column(String(200))
    spec_text: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    spec: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=SweepStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    cells: Mapped[list[CellRow]] = relationship(back_populates="sweep", cascade="all, delete-orphan")


class GroupRow(Base):
    """Cells that share one provisioning of the stack."""

    __tablename__ = "cell_groups"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    config: Mapped[dict[str, Any]]
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=GroupStatus.PENDING)
    host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class SutLeaseRow(Base):
    """A SUT host in use by one running group: two generators never load the same SUT host at once."""

    __tablename__ = "sut_leases"

    host: Mapped[str] = mapped_column(String(200), primary_key=True)
    group_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CellRow(Base):
    """One measurement cell: parameters, status, stage times, host, error and summary metrics."""

    __tablename__ = "cells"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("cell_groups.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]]
    users: Mapped[int] = mapped_column(Integer)
    instances: Mapped[int] = mapped_column(Integer)
    repetition: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=CellStatus.PENDING, index=True)
    host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sut_host: Mapped[str | None] = mapped_column(String(200), nullable=True)
    host_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    stage_times: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error_stage: Mapped[str | None] = mapped_column(String(20), nullable=True)
    error_category: Mapped[str | None] = mapped_column(String(20), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    measured_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    warmup_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    generator_cpu_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    generator_saturated: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    cache_hits: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cache_misses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stack_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    artefacts: Mapped[str | None] = mapped_column(String(500), nullable=True)
    offered_rps: Mapped[float | None] = mapped_column(Float, nullable=True)  # open-loop load: requests/s offered
    achieved_rps: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_saturated: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # achieved < 95% of offered
    cpu_sets: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {generator: [..], stack: [..]}
    host_cpu: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # busy % over the window
    host_saturated: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # No request vanishes: requests still in flight at the window's close (counted as failures), users that
    # completed a request in the window or none (closed loop), starts behind their schedule (open loop),
    # users ÷ (throughput × (response + think time)) and the flags they raise.
    unfinished_requests: Mapped[int | None] = mapped_column(Integer, nullable=True)
    users_active: Mapped[int | None] = mapped_column(Integer, nullable=True)
    users_stalled: Mapped[int | None] = mapped_column(Integer, nullable=True)
    late_starts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    concurrency_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    load_stalled: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    load_mismatch: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    warnings: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)  # derived figures lost, and why
    # The cost side: declared cost (Σ replicas × cost per replica), per service, measured CPU per request, and
    # for a capacity-search probe why it was measured.
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_breakdown: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cpu_ms_per_request: Mapped[float | None] = mapped_column(Float, nullable=True)
    probe: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    sweep: Mapped[SweepRow] = relationship(back_populates="cells")
    measurements: Mapped[list[MeasurementRow]] = relationship(
        back_populates="cell", cascade="all, delete-orphan", order_by="MeasurementRow.id"
    )


class MeasurementRow(Base):
    """Locust statistics of one endpoint (or of all, name ``Aggregated``) in one cell's measured window."""

    __tablename__ = "measurements"
    __table_args__ = (UniqueConstraint("cell_id", "method", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cell_id: Mapped[str] = mapped_column(ForeignKey("cells.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(300))
    requests: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    rps: Mapped[float] = mapped_column(Float)
    mean_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p90_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    histogram: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    p50_ok_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # successful requests alone
    p90_ok_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p95_ok_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99_ok_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    histogram_ok: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    cell: Mapped[CellRow] = relationship(back_populates="measurements")
