"""Events posted to the API (`POST /v1/events`): checked by ingestion's rules, landed durably, then kept for the
shopper's session. Nothing is acknowledged before it is in the landing zone.

For each event of a batch, in order: ingestion's rules (`event_rules`, with the served day as the day: the
API reads no clock, the day after the served cards' day is its "today"), `day_closed` when that day's site
file has landed (`event_log`), then `duplicate_event_id` for an id earlier in the batch or recorded before
(an id posted twice counts once). The others are appended to the landing zone and synced, then recorded for
their shoppers (`sessions`): the member's, and the session's. Two processes racing with the same new id may
both land it; ingestion keeps the first copy, and the sessions count it once.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from reco_assets.pipeline.ingestion import InputLimits
from reco_assets.serving.event_log import EventLog
from reco_assets.serving.event_rules import event_reason, landing_line, read_batch
from reco_assets.serving.sessions import SessionStore, posted
from reco_assets.serving.store import Manifest

ACCEPTED, REJECTED = "accepted", "rejected"


@dataclass
class EventIntake:
    log: EventLog
    sessions: SessionStore
    limits: InputLimits
    max_batch_events: int


def serving_day(manifest: Manifest) -> date:
    """The day the served version is served on: the day after its cards' day."""
    return date.fromisoformat(manifest.as_of_date) + timedelta(days=1)


async def take(intake: EventIntake, manifest: Manifest, body: bytes) -> dict:
    """The answer to a batch `body` (`event_rules.read_batch`, which raises `BadBatch`): per event its
    status (and reason), in the batch's order."""
    events = read_batch(body, intake.max_batch_events)
    day = serving_day(manifest)
    closed = intake.log.closed(day)
    reasons = [event_reason(event, day, intake.limits) for event in events]
    reasons = [reason or ("day_closed" if closed else None) for reason in reasons]
    first: dict[str, int] = {}
    for at, (event, reason) in enumerate(zip(events, reasons)):
        if reason is None:
            if event["event_id"] in first:
                reasons[at] = "duplicate_event_id"
            else:
                first[event["event_id"]] = at
    fresh = list(first.values())
    seen = await intake.sessions.seen_async(day, [events[at]["event_id"] for at in fresh])
    for at, known in zip(fresh, seen):
        if known:
            reasons[at] = "duplicate_event_id"
    landed = [at for at in fresh if reasons[at] is None]
    await intake.log.append(day, [landing_line(events[at]) for at in landed])
    await intake.sessions.record_async(day, [posted(events[at]) for at in landed])
    answers = [
        {"event_id": _id_of(event), "status": ACCEPTED if reason is None else REJECTED}
        | ({"reason": reason} if reason else {})
        for event, reason in zip(events, reasons)
    ]
    return {
        "version": manifest.version,
        "serving_day": day.isoformat(),
        "accepted": len(landed),
        "rejected": len(events) - len(landed),
        "events": answers,
    }


def _id_of(event: object) -> str | None:
    """The event's id as posted, when it is one."""
    return event.get("event_id") if isinstance(event, dict) and isinstance(event.get("event_id"), str) else None
