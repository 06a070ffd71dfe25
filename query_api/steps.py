"""Turn the events of one request or one job into a step: attempts, retries, delays, state.

Pure functions over redacted timeline events. How an event moves a step along is read from
the last segment of its type and its ``status``:

* ``queued`` puts a job in the queue; ``started``/``attempt`` begin an attempt;
* ``retry`` begins the next attempt and carries why the previous one failed ("Retry 1 after
  provider timeout"); a ``retry`` whose ``attempt`` equals the running attempt instead marks
  that attempt failed and the next start is the retry;
* ``sent``/``delivered``/``succeeded``/``done`` (or status done) finish an attempt;
  ``failed``/``bounced`` (or status failed) fail it; a later terminal event of the same attempt
  wins, because a message can be sent and then bounce;
* an explicit ``attempt`` number higher than the current one always begins a new attempt;
  a lower one reports late on the earlier try it names (services' clocks differ by a second
  or two), unless it starts a job that had ended over again (a re-run numbered from 1);
* a ``queued`` event naming a higher attempt than the last, ended one queues the job again
  (a retry set for later);
* a system event saying its try ended undone (``timeout``, ``dead``, ``cancelled``,
  ``skipped``...) fails that try: nothing is left running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum, auto

from ingest.schema import Lane, TimelineEvent
from query_api.models import AttemptOut, StepKind, StepOut, StepState


class Move(Enum):
    """What one event does to its step."""

    QUEUED = auto()
    START = auto()
    RETRY = auto()
    PROGRESS = auto()
    SUCCESS = auto()
    FAILURE = auto()


_BY_SUFFIX = {
    "queued": Move.QUEUED,
    "enqueued": Move.QUEUED,
    "scheduled": Move.QUEUED,
    "started": Move.START,
    "attempt": Move.START,
    "retry": Move.RETRY,
    "retrying": Move.RETRY,
    "retried": Move.RETRY,
    "progress": Move.PROGRESS,
    "running": Move.PROGRESS,
    "sent": Move.SUCCESS,
    "delivered": Move.SUCCESS,
    "succeeded": Move.SUCCESS,
    "done": Move.SUCCESS,
    "completed": Move.SUCCESS,
    "created": Move.SUCCESS,
    "submitted": Move.SUCCESS,
    "requested": Move.SUCCESS,
    "changed": Move.SUCCESS,
    "updated": Move.SUCCESS,
    "failed": Move.FAILURE,
    "bounced": Move.FAILURE,
    "rejected": Move.FAILURE,
}


# Words a system event uses for a try that ended without doing its work. Read as activity,
# such a job stayed "running", turned "stuck" and went to engineering, while nothing was left
# to run and nothing was sent. A customer's own event with such a word is what they did
# ("subscription.cancelled"), so only system events are read so; "cancelled" and "skipped"
# only of a job (a lone system event "reminder.skipped" is no failure of the trace).
_ENDED_UNDONE = frozenset(
    {"timeout", "timed_out", "dead", "dead_lettered", "aborted", "error", "errored"}
)
_JOB_NOT_RUN = frozenset({"cancelled", "canceled", "skipped"})
_JOB_ENDED_UNDONE = _ENDED_UNDONE | _JOB_NOT_RUN


def _ended_undone_word(event: TimelineEvent) -> str | None:
    """The word (status first, else the type's last segment) saying a system event's try
    ended undone, if it says so."""
    if event.lane is not Lane.SYSTEM:
        return None
    words = _JOB_ENDED_UNDONE if event.job_id else _ENDED_UNDONE
    for word in (event.status, event.type.rsplit(".", 1)[-1]):
        if word in words:
            return word
    return None


def ended_undone_reason(event: TimelineEvent) -> str | None:
    """The reason shown for a try that ended by a word, not an error ("Cancelled", "Timed
    out"), when the event carries no reason of its own: "failed" alone would hide it."""
    word = _ended_undone_word(event)
    return word.replace("_", " ").capitalize() if word else None


def classify(event: TimelineEvent) -> Move:
    """How ``event`` moves its step; an explicit status outranks the type's wording."""
    suffix = event.type.rsplit(".", 1)[-1]
    by_suffix = _BY_SUFFIX.get(suffix)
    if by_suffix is Move.RETRY:
        return Move.RETRY
    if event.status == "failed":
        return Move.FAILURE
    if event.status == "done":
        return Move.SUCCESS
    if _ended_undone_word(event) is not None:
        return Move.FAILURE
    if by_suffix is not None:
        return by_suffix
    if event.status == "queued":
        return Move.QUEUED
    if event.status == "running":
        return Move.PROGRESS
    # A customer event is a point in time: the customer did it. A system event of unknown
    # wording is activity, not an outcome.
    return Move.SUCCESS if event.lane is Lane.CUSTOMER else Move.PROGRESS


# Where each move stands in a step's life, to order events that share one instant: queued
# before started, started before progress, a retry after the try it ends, outcomes last.
_LIFECYCLE = {
    Move.QUEUED: 0,
    Move.START: 1,
    Move.PROGRESS: 2,
    Move.RETRY: 3,
    Move.SUCCESS: 4,
    Move.FAILURE: 4,
}


def event_order(event: TimelineEvent) -> tuple[datetime, int, int, str]:
    """The sort key of events everywhere a trace or job is read: time, then for events of one
    instant the attempt they name and where they stand in its life, then ``event_id``.

    Services stamp whole seconds, so a job can be queued, started and failed in one instant;
    ordered by ``event_id`` alone it could fail before it started and read as running. The
    attempt number comes first so "attempt 1 failed" precedes "attempt 2 started" at the same
    instant (a queued event always stands before any attempt; an event without a number
    counts as 0, so jobs that number no attempt are ordered by their life alone).
    """
    move = classify(event)
    attempt = -1 if move is Move.QUEUED else (event.attempt or 0)
    stage = _LIFECYCLE[move]
    if move is Move.FAILURE and event.job_id:
        # A job's try can be sent and then bounce, never bounce and then be sent: of one
        # instant, its failure comes last (by event_id, "sent" could win over the bounce).
        stage += 1
    return event.occurred_at, attempt, stage, event.event_id


@dataclass
class _Attempt:
    number: int
    started_at: datetime
    is_retry: bool
    wait_before: timedelta | None
    last_at: datetime
    state: StepState = StepState.RUNNING
    finished_at: datetime | None = None
    error_code: str | None = None
    reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in (StepState.DONE, StepState.FAILED)

    def finish(self, state: StepState, event: TimelineEvent) -> None:
        self.state, self.finished_at, self.last_at = state, event.occurred_at, event.occurred_at
        if state is StepState.FAILED:
            self.error_code = event.error_code or self.error_code
            self.reason = event.reason or self.reason or ended_undone_reason(event)
        else:
            self.error_code = self.reason = None

    def fail_quietly(self, cause: TimelineEvent) -> None:
        """Close an attempt that never reported its end: it failed, when is not known (the
        next try says so; "finished" at its start would read as an instant failure)."""
        self.state, self.finished_at = StepState.FAILED, None
        self.error_code = self.error_code or cause.error_code
        self.reason = self.reason or cause.reason

    def out(self) -> AttemptOut:
        wait = self.wait_before.total_seconds() if self.wait_before is not None else None
        return AttemptOut(
            number=self.number,
            started_at=self.started_at,
            finished_at=self.finished_at,
            state=self.state,
            is_retry=self.is_retry,
            wait_before_seconds=wait,
            error_code=self.error_code,
            reason=self.reason,
        )


@dataclass
class _JobRun:
    attempts: list[_Attempt] = field(default_factory=list)
    queued_at: datetime | None = None
    queued_attempt: int | None = None  # the highest attempt a ``queued`` event named

    @property
    def queued_again(self) -> bool:
        """Whether the job waits for a try its queue named after the last one ended (a
        payment retry set for tomorrow): "failed" would send support after a fix the system
        is about to try itself."""
        last = self.attempts[-1] if self.attempts else None
        return (
            last is not None
            and last.finished
            and self.queued_attempt is not None
            and self.queued_attempt > last.number
        )

    def begin(self, event: TimelineEvent, number: int | None, retry_cause: bool) -> _Attempt:
        cur = self.attempts[-1] if self.attempts else None
        if cur is not None and not cur.finished:
            cur.fail_quietly(event)
        if number is None:
            number = cur.number + 1 if cur else 1
        # From the previous try's end, or its last news when its end was not reported.
        prev_end = (cur.finished_at or cur.last_at) if cur else self.queued_at
        wait = event.occurred_at - prev_end if prev_end is not None else None
        is_retry = cur is not None or number > 1
        new = _Attempt(number, event.occurred_at, is_retry, wait, event.occurred_at)
        if retry_cause and cur is not None:
            # "Retry after provider timeout": the retry names why the previous try failed.
            cur.error_code = cur.error_code or event.error_code
            cur.reason = cur.reason or event.reason
        self.attempts.append(new)
        return new

    def apply(self, event: TimelineEvent) -> None:
        move, number = classify(event), event.attempt
        cur = self.attempts[-1] if self.attempts else None
        if move is Move.QUEUED:
            self.queued_at = self.queued_at or event.occurred_at
            if number is not None:
                self.queued_attempt = max(number, self.queued_attempt or number)
            return
        if move is Move.RETRY and cur is not None and number is not None and number == cur.number:
            cur.finish(StepState.FAILED, event)  # "attempt n failed, will retry"
            return
        higher = cur is not None and number is not None and number > cur.number
        fresh = move in (Move.START, Move.RETRY) and (number is None or cur is None)
        # A job that had ended and starts again under a number already used was run again
        # (numbered from 1 anew): a new try, not the old one's news ("no retry" hid the failure).
        rerun = (
            move is Move.START
            and cur is not None
            and cur.finished
            and number is not None
            and number <= cur.number
        )
        if cur is not None and number is not None and number < cur.number and not rerun:
            self._late_news(event, move, number)
            return
        began_by_retry = False
        if cur is None or higher or rerun or (fresh and (cur.finished or move is Move.RETRY)):
            cur = self.begin(event, number, retry_cause=move is Move.RETRY)
            began_by_retry = move is Move.RETRY
        cur.last_at = max(cur.last_at, event.occurred_at)
        if move is Move.SUCCESS:
            cur.finish(StepState.DONE, event)
        elif move is Move.FAILURE:
            cur.finish(StepState.FAILED, event)
        elif event.error_code and not began_by_retry:
            # An error reported mid-attempt (e.g. a webhook answered 503) is that attempt's
            # error even before anything says the attempt is over.
            cur.error_code, cur.reason = event.error_code, event.reason or cur.reason

    def _late_news(self, event: TimelineEvent, move: Move, number: int) -> None:
        """News of an earlier try that sorts after a later one began: the service reporting
        it runs its clock a little behind (a worker 2 s behind the API), so "attempt 1
        failed" can be stamped after "attempt 2 sent". It tells about the try it names, never
        the one after it (read so, a job retried and sent read as failed)."""
        earlier = next((a for a in reversed(self.attempts) if a.number == number), None)
        if earlier is None:
            return  # a try nothing else reported: its outcome changes no state shown
        earlier.last_at = max(earlier.last_at, event.occurred_at)
        if move is Move.SUCCESS:
            earlier.finish(StepState.DONE, event)
        elif move is Move.FAILURE:
            earlier.finish(StepState.FAILED, event)
        elif move is Move.RETRY or event.error_code:
            # "attempt n failed, will retry", or an error met during that try.
            if not earlier.finished:
                earlier.state = StepState.FAILED
            earlier.error_code = earlier.error_code or event.error_code
            earlier.reason = earlier.reason or event.reason


def common_label(labels: Sequence[str]) -> str:
    """The shared leading words of labels ("Signup email queued", "Signup email sent" ->
    "Signup email"), or the first label when they share none."""
    if not labels:
        return ""
    words = [label.split() for label in labels]
    shared: list[str] = []
    for column in zip(*words, strict=False):
        if any(w != column[0] for w in column):
            break
        shared.append(column[0])
    return " ".join(shared) if shared else labels[0]


_WAITING_WORDS = frozenset({"queued", "enqueued", "scheduled"})


def _job_label(events: Sequence[TimelineEvent]) -> str:
    """What the job is: its events' shared words; a job only queued so far is named without
    that word ("Data export", not "Data export scheduled is queued")."""
    labels = [e.label for e in events]
    label = common_label(labels)
    if len(set(labels)) == 1 and classify(events[-1]) is Move.QUEUED:
        head, _, last = label.rpartition(" ")
        if head and last.lower() in _WAITING_WORDS:
            return head
    return label


RUN_AT_FIELD = "run_at"  # the kept field (``timestamp`` operator) naming when a job is due


def due_time(events: Sequence[TimelineEvent]) -> datetime | None:
    """When the job is due to run, as the latest of its events that says so (a job scheduled
    for the night, a retry set for tomorrow) put it; None when none does."""
    for event in reversed(events):
        value = event.fields.get(RUN_AT_FIELD)
        if value:
            try:
                due = datetime.fromisoformat(value)
            except ValueError:
                return None
            # Only a time with its zone (what the timestamp operator keeps) is read as one.
            return due if due.utcoffset() is not None else None
    return None


def job_step(
    job_id: str, events: Sequence[TimelineEvent], now: datetime, stuck_after: timedelta
) -> StepOut:
    """The step of one job from its own (system) events, oldest first."""
    run = _JobRun()
    for event in events:
        run.apply(event)
    attempts = run.attempts
    last = attempts[-1] if attempts else None
    ended = not run.queued_again  # a job queued again after its last try has not ended
    if not ended or (last is None and run.queued_at):
        state = StepState.QUEUED
    else:
        state = last.state if last else StepState.UNKNOWN
    last_seen = max((e.occurred_at for e in events), default=None)
    unfinished = state in (StepState.QUEUED, StepState.RUNNING)
    scheduled_for = due_time(events) if unfinished else None
    # A job waiting for the time it was scheduled for is not stuck: its limit counts from then.
    quiet_since = max(filter(None, (last_seen, scheduled_for)), default=None)
    stuck = unfinished and quiet_since is not None and now - quiet_since > stuck_after
    retries = [a for a in attempts if a.is_retry]
    failed = last if last is not None and ended and last.state is StepState.FAILED else None
    return StepOut(
        kind=StepKind.JOB,
        label=_job_label(events),
        job_id=job_id,
        request_id=next((e.request_id for e in events if e.request_id), None),
        started_at=run.queued_at or (attempts[0].started_at if attempts else None),
        finished_at=last.finished_at if last is not None and last.finished and ended else None,
        last_event_at=last_seen,
        scheduled_for=scheduled_for,
        state=state,
        stuck=stuck,
        attempts=len(attempts),
        retries=len(retries),
        # ``is not None``: a retry that starts the moment the last try failed waited 0 s, and
        # that wait is shown, not dropped (a zero timedelta is false).
        retry_delays_seconds=[
            a.wait_before.total_seconds() for a in retries if a.wait_before is not None
        ],
        attempt_history=[a.out() for a in attempts],
        last_retry_at=retries[-1].started_at if retries else None,
        error_code=failed.error_code if failed else None,
        reason=failed.reason if failed else None,
        event_ids=[e.event_id for e in events],
    )


def point_step(kind: StepKind, events: Sequence[TimelineEvent]) -> StepOut:
    """A request (or lone system event): its state is the outcome of its last event."""
    outcome = classify(events[-1])
    state = {
        Move.SUCCESS: StepState.DONE,
        Move.FAILURE: StepState.FAILED,
        Move.QUEUED: StepState.QUEUED,
    }.get(outcome, StepState.RUNNING)
    failing = next((e for e in reversed(events) if classify(e) is Move.FAILURE), None)
    finished = state in (StepState.DONE, StepState.FAILED)
    return StepOut(
        kind=StepKind.ERROR if kind is StepKind.EVENT and state is StepState.FAILED else kind,
        label=events[0].label,
        request_id=next((e.request_id for e in events if e.request_id), None),
        job_id=next((e.job_id for e in events if e.job_id), None),
        started_at=events[0].occurred_at,
        finished_at=events[-1].occurred_at if finished else None,
        last_event_at=events[-1].occurred_at,
        state=state,
        attempts=1,
        error_code=failing.error_code if failing and state is StepState.FAILED else None,
        reason=(failing.reason or ended_undone_reason(failing))
        if failing and state is StepState.FAILED
        else None,
        event_ids=[e.event_id for e in events],
    )
