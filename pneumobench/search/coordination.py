"""Agreement between workers that share one Optuna storage: the first insert wins.

Workers started with the same command on several processes or nodes must agree on three things
that Optuna does not decide for them: which MLflow run is a model's parent, which trials still fit
in the budget (exactly ``n_trials`` finish, not N x), and which worker runs the final test
evaluation. Each is a *claim*: a row in the table ``pneumobench_claims`` of the Optuna storage's own
database (SQLite or PostgreSQL). Its primary key makes the first insert win and every later one
fail, inside the database's own transactions, so every worker reads back the same winner.

A claim records its holder (``host:pid``) and when it was taken. A claim held by a process of this
host that no longer exists, or a lock older than ``stale_after`` seconds, may be taken over: a
worker killed while holding one never blocks the others for good.

Every time is the **database's** clock (``taken_at`` is written and a lock's age judged in SQL):
hosts whose clocks disagree by minutes still agree on which lock is stale, and a node running
ahead cannot take over a live lock.
"""

from __future__ import annotations

import random
import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from pneumobench.search.recovery import is_dead_local_worker, this_worker

TABLE = "pneumobench_claims"
_metadata = sa.MetaData()
_claims = sa.Table(
    TABLE,
    _metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("holder", sa.String(512), nullable=False),
    sa.Column("taken_at", sa.Float, nullable=False),
)


def db_now(engine: sa.engine.Engine) -> sa.ColumnElement:
    """The database's current time in epoch seconds, as an SQL expression (the statement's own
    time, not the transaction's start)."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return sa.func.extract("epoch", sa.func.clock_timestamp())
    if dialect == "sqlite":
        return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)")
    if dialect in ("mysql", "mariadb"):
        return sa.func.unix_timestamp(sa.func.now(6))
    # an unknown database: this host's clock, read when each statement runs
    return sa.bindparam("host_now", callable_=time.time, type_=sa.Float)


class Claims:
    """Claims and locks kept in the database behind an Optuna RDB storage."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self.now = db_now(engine)
        for attempt in range(5):  # workers starting together may race to create the table
            try:
                _metadata.create_all(engine, checkfirst=True)
                break
            except (IntegrityError, ProgrammingError, OperationalError):
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def get(self, key: str) -> str | None:
        """The holder of ``key``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_claims.c.holder).where(_claims.c.key == key)).first()
        return None if row is None else str(row[0])

    def _row(self, key: str) -> tuple[str, float] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(_claims.c.holder, _claims.c.taken_at).where(_claims.c.key == key)
            ).first()
        return None if row is None else (str(row[0]), float(row[1]))

    def claim(self, key: str, holder: str) -> str:
        """Insert ``holder`` under ``key`` unless someone did first; the holder that won."""
        try:
            with self.engine.begin() as conn:
                conn.execute(_claims.insert().values(key=key, holder=holder, taken_at=self.now))
            return holder
        except IntegrityError:
            winner = self.get(key)
            if winner is None:  # released in between: try again
                return self.claim(key, holder)
            return winner

    def take_over(self, key: str, old: str, new: str, older_than: float | None = None) -> bool:
        """Replace holder ``old`` by ``new`` (only if the claim was taken more than
        ``older_than`` seconds ago by the database's clock); False if someone else changed the
        claim first, or it is younger."""
        conditions = [_claims.c.key == key, _claims.c.holder == old]
        if older_than is not None:
            conditions.append(_claims.c.taken_at < self.now - older_than)
        with self.engine.begin() as conn:
            result = conn.execute(
                _claims.update().where(*conditions).values(holder=new, taken_at=self.now)
            )
        return result.rowcount == 1

    def release(self, key: str, holder: str) -> None:
        """Drop ``key`` if ``holder`` still holds it."""
        with self.engine.begin() as conn:
            conn.execute(_claims.delete().where(_claims.c.key == key, _claims.c.holder == holder))

    def acquire(
        self, key: str, *, stale_after: float = 120.0, poll: float = 0.05, max_poll: float = 1.0
    ) -> Lease:
        """A mutex across processes and hosts, held until the lease is released. A waiter
        polls after ``poll`` seconds, doubling up to ``max_poll``, jittered: many workers
        waiting on one lock do not flood the database with attempts."""
        me = f"{this_worker()}:{time.time_ns()}"  # unique even for nested use by one process
        wait = poll
        while True:
            holder = self.claim(key, me)
            if holder == me:
                return Lease(self, key, me)
            row = self._row(key)
            if row is not None:
                old, _ = row
                dead = is_dead_local_worker(old.rsplit(":", 1)[0])
                if self.take_over(key, old, me, None if dead else stale_after):
                    return Lease(self, key, me)
            time.sleep(wait * random.uniform(0.5, 1.5))
            wait = min(wait * 2, max_poll)


class Lease:
    """A held lock; ``release`` is idempotent."""

    def __init__(self, claims: Claims, key: str, holder: str) -> None:
        self._claims, self._key, self._holder = claims, key, holder
        self.held = True

    def release(self) -> None:
        """Let the next worker in."""
        if self.held:
            self.held = False
            self._claims.release(self._key, self._holder)
